"""Key rotation: a new key-encryption key, every data key re-wrapped under it in batches,
then the older KEKs retired.

The rotation under way is recorded in the store's key state (`rotating_to`) before the
first data key moves, and each re-wrap is a compare-and-set, so a rotation that stopped
(a crash, a kill) is finished by running it again, by the CLI or by a server at start;
until then the older KEKs still unwrap.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from baseshift.core.capabilities import DataKeys

from .providers import Kek, KeyProvider

Progress = Callable[[int, int], None]
"""Told (data keys under the new KEK, all data keys) after each batch."""


@dataclass(frozen=True, slots=True)
class Rotated:
    """What a finished rotation did."""

    kek_id: str
    rewrapped: int
    retired: tuple[str, ...]
    resumed: bool


async def rotation_target(store: DataKeys, provider: KeyProvider) -> tuple[str, bool]:
    """The KEK of the rotation under way (resumed: True), else a new one, recorded."""
    state = dict(await store.key_state() or {})
    target = state.get("rotating_to")
    if isinstance(target, str) and target in {k.id for k in await provider.keks()}:
        return target, True
    kek = await provider.create()
    state.update(rotating_to=kek.id, started_at=time.time())
    await store.save_key_state(state)
    return kek.id, False


async def rotate(store: DataKeys, provider: KeyProvider, batch: int,
                 progress: Progress = lambda done, total: None) -> Rotated:
    """Run (or finish) a rotation; see the module docstring."""
    target, resumed = await rotation_target(store, provider)
    moved = 0
    while found := await store.data_keys_not_under(target, batch):
        for key in found:
            kek_id, wrapped = await provider.rewrap(key.kek_id, key.wrapped, target)
            moved += await store.rewrap_data_key(key.id, key.kek_id, kek_id, wrapped)
        counts = await store.data_key_counts()
        progress(counts.get(target, 0), sum(counts.values()))
    retired = tuple(k.id for k in await provider.keks()
                    if k.id != target and k.retired_at is None)
    await provider.retire(retired)
    state = dict(await store.key_state() or {})
    started = state.pop("started_at", None)
    state.pop("rotating_to", None)
    state["last_rotation"] = {"kek_id": target, "started_at": started,
                              "finished_at": time.time(), "retired": list(retired)}
    await store.save_key_state(state)
    return Rotated(target, moved, retired, resumed)


async def unfinished(store: DataKeys) -> str | None:
    """The KEK of a rotation under way, if any."""
    target = (await store.key_state() or {}).get("rotating_to")
    return target if isinstance(target, str) else None


async def status(store: DataKeys, provider: KeyProvider) -> dict[str, Any]:
    """The keys' state as JSON: KEKs with ages and data keys each, the rotation."""
    counts = await store.data_key_counts()
    current = await provider.current()
    now = time.time()
    state: Mapping[str, Any] = await store.key_state() or {}
    keks = [_kek_json(k, now, counts.get(k.id, 0), k.id == current.id)
            for k in await provider.keks()]
    rotating = state.get("rotating_to")
    return {
        "provider": provider.name, "current": current.id, "keks": keks,
        "data_keys": sum(counts.values()),
        "rotation": None if not isinstance(rotating, str) else {
            "kek_id": rotating, "started_at": state.get("started_at"),
            "rewrapped": counts.get(rotating, 0), "total": sum(counts.values())},
        "last_rotation": state.get("last_rotation"),
    }


def _kek_json(kek: Kek, now: float, data_keys: int, current: bool) -> dict[str, Any]:
    return {"id": kek.id, "created_at": kek.created_at,
            "age_days": round(max(0.0, now - kek.created_at) / 86400, 2),
            "retired_at": kek.retired_at, "current": current, "data_keys": data_keys}
