"""The builtin `keys` plugin: the sealer of stored secret values (answering last, so a
third-party key plugin takes over by answering), the rotation a server resumes at start,
and the key permissions."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from baseshift.core.access import Permission
from baseshift.core.capabilities import DataKeys
from baseshift.core.compliance import Control
from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING, StashKey

from .rotation import rotate, unfinished
from .service import keys_of
from .settings import keys_settings

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.sealing import Sealer

log = logging.getLogger("baseshift.keys")

KEYS_GENERATE = Permission("keys:generate", "make data keys for the key API")
KEYS_ENCRYPT = Permission("keys:encrypt", "encrypt data with a key of the key API")
KEYS_DECRYPT = Permission("keys:decrypt", "decrypt data sealed with a key of the key API")
RESUMING: StashKey[asyncio.Task[None]] = StashKey("keys.resume")


@hookimpl(trylast=True)
def provide_sealer(baseshift: App) -> Sealer:
    return keys_of(baseshift.stash, baseshift.settings, baseshift.store).sealer


@hookimpl
def register_permissions() -> list[Permission]:
    return [KEYS_GENERATE, KEYS_ENCRYPT, KEYS_DECRYPT]


@hookimpl
async def startup(baseshift: App) -> None:
    """Check the options; make (or check) the key file; in a server, finish a rotation left
    unfinished, in the background. A store without the `DataKeys` ability is left alone
    here: only sealing needs it, and says so (`provide_sealer`)."""
    options = keys_settings(baseshift.settings)
    if not isinstance(baseshift.store, DataKeys):
        return
    keys = keys_of(baseshift.stash, baseshift.settings, baseshift.store)
    if options.provider == "file":  # a remote provider is first asked when a key is needed
        await keys.provider.current()
    if baseshift.stash.get(SERVING) and RESUMING not in baseshift.stash:
        baseshift.stash[RESUMING] = asyncio.get_running_loop().create_task(_resume(baseshift))


async def _resume(baseshift: App) -> None:
    keys = keys_of(baseshift.stash, baseshift.settings, baseshift.store)
    target = await unfinished(keys.store)
    if target is None:
        return
    log.info("finishing the rotation to key-encryption key %s", target)
    try:
        done = await rotate(keys.store, keys.provider, keys.settings.rotation_batch)
    except Exception:
        log.exception("the key rotation failed; run `baseshift keys rotate` to finish it")
        return
    log.info("key rotation finished: %d data keys re-wrapped under %s", done.rewrapped,
             done.kek_id)


@hookimpl
async def shutdown(baseshift: App) -> None:
    task = baseshift.stash.pop(RESUMING)
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@hookimpl
async def compliance_controls(baseshift: App) -> list[Control]:
    from .controls import AT_REST, controls

    if not isinstance(baseshift.store, DataKeys):
        return [Control("keys.at-rest", "Stored secret values are encrypted", "pending",
                        f"the state store {baseshift.store.name!r} cannot keep data keys, so "
                        "the keys plugin seals nothing", AT_REST)]
    keys = keys_of(baseshift.stash, baseshift.settings, baseshift.store)
    return await controls(keys, baseshift.hooks.sealer() is keys.sealer)


@hookimpl
async def resolve_secret(baseshift: App, name: str) -> str | None:
    """`${secret.NAME}` from Vault's KV v2 engine, when `[plugins.keys.vault] kv_mount` is
    set (else None: the next plugin answers)."""
    vault = keys_settings(baseshift.settings).vault
    if vault is None or vault.kv_mount is None:
        return None
    from .vault import read_secret

    return await read_secret(baseshift.stash, vault, name)
