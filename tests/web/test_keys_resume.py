"""A server finishes a key rotation left unfinished (plugins/keys/plugin.py `startup`), in
the background, and serves the sealed values throughout."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from baseshift.core.backends import STATE
from baseshift.core.settings import Settings
from baseshift.plugins.keys.envelope import Envelope, StoreSealer
from baseshift.plugins.keys.keyfile import LocalKeyFile
from baseshift.plugins.keys.plugin import RESUMING
from baseshift.plugins.keys.rotation import rotation_target, unfinished
from tests.plugins.backends import build


async def test_a_server_finishes_an_unfinished_rotation_at_start(
        tmp_path: Path, make_client: Callable[..., Any]) -> None:
    data_dir = tmp_path / "data"
    store: Any = build(STATE, Settings(data_dir=data_dir, store="sqlite"))
    await store.open()
    provider = LocalKeyFile(data_dir / "keys.json")
    sealer = StoreSealer(Envelope(store, provider), renew_uses=1)
    tokens = {await sealer.seal(str(n)): str(n) for n in range(5)}
    target, _ = await rotation_target(store, provider)
    await store.close()

    async with make_client(store="sqlite", data_dir=data_dir) as (bs, client):
        task = bs.stash[RESUMING]  # started by the server's start-up
        await task
        assert await unfinished(bs.store) is None
        assert await bs.store.data_key_counts() == {target: 5}
        sealer = bs.hooks.sealer()
        assert {t: await sealer.unseal(t) for t in tokens} == tokens
