"""The Elasticsearch/OpenSearch log shipper's hooks. Off (no hook does anything) unless
`[plugins.elasticsearch]` sets `url`; then every process that opens the application (the
server, a worker, a CLI command) ships its log lines there, as the JSON log format writes
them, until it stops (docs/operations.md "Shipping logs to Elasticsearch or OpenSearch").

Options (`[plugins.elasticsearch]`, plugins/logship/es_config.py): `url` (a node or a list),
`index` (default `baseshift-logs-{date}`, or a data stream), `api_key` or `username` and
`password` (`${secret.NAME}` allowed), `ca_file`, `verify`, `batch`, `interval`,
`max_buffer`, `timeout`, `retries`, `backoff`, `shutdown_timeout`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import StashKey

from .es_config import ElasticConfig, read_config

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from baseshift.core.appface import App

    from .shipping import Shipping

CONFIG: StashKey[ElasticConfig] = StashKey("logship_elasticsearch_config")
SHIPPING: StashKey[Running] = StashKey("logship_elasticsearch")


@dataclass(frozen=True, slots=True)
class Running:
    shipping: Shipping
    collector: Collector | None
    """The Prometheus collector registered with the metrics plugin, or None."""


def shipping_of(bs: App) -> Shipping | None:
    """The application's shipper to Elasticsearch, or None when it is off or stopped."""
    running = bs.stash.get(SHIPPING)
    return None if running is None else running.shipping


@hookimpl
def configure(baseshift: App) -> None:
    config = read_config(baseshift.settings)
    if config is not None:
        baseshift.stash[CONFIG] = config


@hookimpl
async def startup(baseshift: App) -> None:
    config = baseshift.stash.get(CONFIG)
    if config is None or SHIPPING in baseshift.stash:
        return
    from .es_config import resolve_auth
    from .metrics import expose
    from .shipping import start_elasticsearch

    auth = await resolve_auth(config, baseshift.hooks.resolve_secret)
    shipping = start_elasticsearch(config, auth)
    baseshift.stash[SHIPPING] = Running(shipping, expose(baseshift, shipping))


@hookimpl
async def shutdown(baseshift: App) -> None:
    """Ship what is left, within `shutdown_timeout` seconds."""
    running = baseshift.stash.pop(SHIPPING)
    config = baseshift.stash.get(CONFIG)
    if running is None or config is None:
        return
    from .metrics import conceal

    await running.shipping.stop(config.shutdown_timeout)
    if running.collector is not None:
        conceal(baseshift, running.collector)
