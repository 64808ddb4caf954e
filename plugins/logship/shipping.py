"""One running shipper: the batcher on the `baseshift` logger, the bulk client and the
HTTP connection pool, started and stopped together."""
from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

import httpx

from baseshift.core.app.logbatch import LogBatcher

from .bulk import BulkShipper
from .es_config import Auth, ElasticConfig

log = logging.getLogger("baseshift.logship")


@dataclass
class Shipping:
    """What a process ships to one log service, and its counters."""

    service: str
    batcher: LogBatcher
    shipper: BulkShipper

    @property
    def shipped(self) -> int:
        return self.shipper.counts.shipped

    @property
    def failed(self) -> int:
        return self.shipper.counts.failed

    @property
    def dropped(self) -> int:
        return self.batcher.dropped

    async def stop(self, within: float) -> None:
        """Ship what is left, giving up on retries after `within` seconds (and on the
        rest of the lines, counted as dropped, shortly after: a down service must not hold
        the process up)."""
        loop = asyncio.get_running_loop()
        self.shipper.deadline = loop.time() + within
        try:
            async with asyncio.timeout(within + self.shipper.config.timeout):
                await self.batcher.stop()
        except TimeoutError:
            self.batcher.dropped += self.batcher.pending()
            log.warning("gave up shipping %d log lines to %s at shutdown",
                        self.batcher.pending(), self.service)
        finally:
            await self.shipper.client.aclose()


def start_elasticsearch(config: ElasticConfig, auth: Auth) -> Shipping:
    """Start collecting lines and shipping them to `config.nodes` (on the running loop)."""
    client = httpx.AsyncClient(verify=_tls(config), timeout=config.timeout,
                               follow_redirects=False, trust_env=False)
    shipper = BulkShipper(config, auth, client)
    batcher = LogBatcher(shipper.send, name="elasticsearch", max_lines=config.max_buffer,
                         batch=config.batch, interval=config.interval)
    shipper.warn = batcher.warn
    batcher.start()
    return Shipping("elasticsearch", batcher, shipper)


def _tls(config: ElasticConfig) -> ssl.SSLContext | bool:
    if not config.verify:
        return False
    return ssl.create_default_context(cafile=config.ca_file or None)
