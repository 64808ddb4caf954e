"""Adding and removing upstream servers: the registry, the NGINX configuration, its check and
reload, and the audit entries; and the status the API shows."""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from baseshift.core import audit
from baseshift.core.errors import NotFound
from baseshift.core.stash import StashKey

from . import nginx, registry
from .health import HealthChecker, probe_all
from .nginx import Server
from .settings import LbOptions, options_of

if TYPE_CHECKING:
    from baseshift.core.appface import App

LOCK: StashKey[asyncio.Lock] = StashKey("loadbalancer_lock")
"""One change at a time in this process (between processes the last write wins)."""
CHECKER: StashKey[HealthChecker] = StashKey("loadbalancer_health")
ADD = "loadbalancer.add_server"
REMOVE = "loadbalancer.remove_server"


def _lock(bs: App) -> asyncio.Lock:
    lock = bs.stash.get(LOCK)
    if lock is None:
        lock = bs.stash[LOCK] = asyncio.Lock()
    return lock


async def load_registry(bs: App) -> registry.Registry:
    return await registry.load(bs.store, bs.settings.data_dir)


async def _apply(bs: App, options: LbOptions, reg: registry.Registry, action: str,
                 resource: str) -> bool:
    """Render and install `reg`'s configuration, save the registry (so file and registry
    agree even when the reload fails), reload NGINX. A configuration NGINX rejects is
    audited as a failed `action` before the error goes on."""
    try:
        await nginx.install(options, nginx.render(options, reg.servers))
    except nginx.NginxRejected as exc:
        await audit.record(bs.store, [audit.entry(action, resource, audit.FAILURE,
                                                  nginx=exc.message[:500])])
        raise
    await registry.save(bs.store, bs.settings.data_dir, reg)
    reloaded = await nginx.reload(options)
    if reloaded:
        reg.reloaded_at = time.time()
        await registry.save(bs.store, bs.settings.data_dir, reg)
    return reloaded


async def write_config(bs: App) -> None:
    """At start: the configuration of the registered servers, when there is no file yet (so
    NGINX can be started on it)."""
    options = options_of(bs.settings)
    if options.config.exists():
        return
    reg = await load_registry(bs)
    nginx.prepare(options)
    nginx.write_atomically(options.config, nginx.render(options, reg.servers))


async def add_server(bs: App, server: Server) -> dict[str, Any]:
    """Register `server` (or change its weight), audited as `loadbalancer.add_server`."""
    options = options_of(bs.settings)
    async with _lock(bs):
        reg = await load_registry(bs)
        kept = [s for s in reg.servers if s.address != server.address]
        reg.servers = [*kept, server]
        reloaded = await _apply(bs, options, reg, ADD, f"loadbalancer:{server.address}")
    await audit.record(bs.store, [audit.entry(
        ADD, f"loadbalancer:{server.address}",
        weight=str(server.weight), reloaded=str(reloaded).lower())])
    return {"address": server.address, "weight": server.weight, "reloaded": reloaded,
            "servers": [s.to_json() for s in reg.servers]}


async def remove_server(bs: App, address: str) -> dict[str, Any]:
    """Take `address` out of the upstream, audited as `loadbalancer.remove_server`. NGINX's
    graceful reload lets the old workers finish the requests they hold: the server drains."""
    options = options_of(bs.settings)
    async with _lock(bs):
        reg = await load_registry(bs)
        kept = [s for s in reg.servers if s.address != address]
        if len(kept) == len(reg.servers):
            raise NotFound(f"server {address} is not registered")
        reg.servers = kept
        reloaded = await _apply(bs, options, reg, REMOVE, f"loadbalancer:{address}")
    await audit.record(bs.store, [audit.entry(
        REMOVE, f"loadbalancer:{address}",
        reloaded=str(reloaded).lower())])
    return {"address": address, "reloaded": reloaded,
            "servers": [s.to_json() for s in reg.servers]}


async def status(bs: App) -> dict[str, Any]:
    """The servers with their health, whether NGINX runs, the configuration's checksum and
    the last reload."""
    options = options_of(bs.settings)
    reg = await load_registry(bs)
    checker = bs.stash.get(CHECKER)
    health = checker.fresh(reg.servers) if checker is not None else None
    if health is None:
        health = (await checker.check(reg.servers) if checker is not None
                  else await probe_all(reg.servers, min(options.interval, 5.0)))
    pid = nginx.running(options)
    return {
        "servers": [{**s.to_json(), "up": health[s.address].up,
                     "detail": health[s.address].detail,
                     "checked_at": health[s.address].checked_at} for s in reg.servers],
        "nginx": {"running": pid is not None, "pid": pid, "config": str(options.config),
                  "checksum": nginx.checksum(options.config),
                  "reloaded_at": reg.reloaded_at},
    }
