"""Key rotation (plugins/keys/rotation.py, `baseshift keys rotate|status`): every data key
moves under the new KEK, the old ones are retired, and a rotation killed midway is finished
by running it again, with every sealed value still opening."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baseshift.core.backends import STATE
from baseshift.core.settings import Settings
from baseshift.plugins.keys.envelope import Envelope, StoreSealer
from baseshift.plugins.keys.keyfile import LocalKeyFile
from baseshift.plugins.keys.rotation import rotate, rotation_target, status, unfinished
from baseshift.plugins.storage.memory import MemoryStateStore
from tests.conftest import REPO
from tests.plugins.backends import build

F_SETPIPE_SZ = 1031  # Linux fcntl: a pipe's buffer size


async def test_a_rotation_rewraps_every_data_key_and_retires_the_old_kek(
        tmp_path: Path) -> None:
    store, provider = MemoryStateStore(), LocalKeyFile(tmp_path / "keys.json")
    sealer = StoreSealer(Envelope(store, provider), renew_uses=1)
    tokens = {await sealer.seal(str(n)): str(n) for n in range(7)}
    old = await provider.current()
    seen: list[tuple[int, int]] = []
    done = await rotate(store, provider, 3, lambda a, b: seen.append((a, b)))
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert done.rewrapped == 7 and done.retired == (old.id,) and not done.resumed
    assert await store.data_key_counts() == {done.kek_id: 7}
    assert [k.retired_at is not None for k in await provider.keks()] == [True, False]
    fresh = StoreSealer(Envelope(store, provider))
    assert {t: await fresh.unseal(t) for t in tokens} == tokens
    found = await status(store, provider)
    assert found["rotation"] is None and found["last_rotation"]["kek_id"] == done.kek_id


async def test_an_unfinished_rotation_is_resumed_not_restarted(tmp_path: Path) -> None:
    store, provider = MemoryStateStore(), LocalKeyFile(tmp_path / "keys.json")
    sealer = StoreSealer(Envelope(store, provider), renew_uses=1)
    for n in range(4):
        await sealer.seal(str(n))
    target, resumed = await rotation_target(store, provider)
    assert not resumed and await unfinished(store) == target
    found = await status(store, provider)
    assert found["rotation"] == {"kek_id": target, "started_at": found["rotation"]["started_at"],
                                 "rewrapped": 0, "total": 4}
    done = await rotate(store, provider, 10)
    assert done.kek_id == target and done.resumed
    assert await unfinished(store) is None and len(await provider.keks()) == 2


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baseshift", "keys", *args], cwd=REPO,
                          env={**os.environ, "BASESHIFT_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=120)


async def test_a_rotation_killed_midway_is_finished_by_running_it_again(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store: Any = build(STATE, Settings(data_dir=data_dir, store="sqlite"))
    await store.open()
    sealer = StoreSealer(Envelope(store, LocalKeyFile(data_dir / "keys.json")), renew_uses=1)
    tokens = {await sealer.seal(f"value {n}"): f"value {n}" for n in range(300)}
    await store.close()

    # stderr is a one-page pipe the test does not drain: after ~120 progress lines of 300
    # the rotation blocks writing, so the kill finds it midway, whatever the machine's speed
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseshift", "keys", "rotate", "--batch-size", "1"], cwd=REPO,
        env={**os.environ, "BASESHIFT_DATA_DIR": str(data_dir)}, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    fcntl.fcntl(proc.stderr.fileno(), F_SETPIPE_SZ, 4096)
    first = proc.stderr.readline()
    assert first.startswith("re-wrapped 1/300 data keys"), first
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()

    midway = json.loads(_cli(data_dir, "status", "--json").stdout)
    rotation = midway["rotation"]
    assert rotation is not None and 0 < rotation["rewrapped"] < rotation["total"] == 300
    assert all(k["retired_at"] is None for k in midway["keks"]) and len(midway["keks"]) == 2

    again = _cli(data_dir, "rotate", "--batch-size", "50")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"finished the rotation to key-encryption key "
                                   f"{rotation['kek_id']}")
    assert again.stderr.strip().splitlines()[-1] == "re-wrapped 300/300 data keys"
    after = json.loads(_cli(data_dir, "status", "--json").stdout)
    assert after["rotation"] is None and after["current"] == rotation["kek_id"]
    assert {k["id"]: (k["retired_at"] is None, k["data_keys"]) for k in after["keks"]} == {
        k["id"]: (k["id"] == rotation["kek_id"], 300 if k["id"] == rotation["kek_id"] else 0)
        for k in after["keks"]}

    store = build(STATE, Settings(data_dir=data_dir, store="sqlite"))
    await store.open()
    try:
        fresh = StoreSealer(Envelope(store, LocalKeyFile(data_dir / "keys.json")))
        assert {t: await fresh.unseal(t) for t in tokens} == tokens
    finally:
        await store.close()


def test_status_prints_the_keys(run_cli: Callable[..., Any]) -> None:
    shown = run_cli("keys", "status")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith("provider file: 0 data keys\n  local-")
    assert "(current): 0.0 days old, 0 data keys" in shown.stdout

