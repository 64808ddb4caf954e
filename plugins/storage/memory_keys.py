"""`DataKeys` (core/capabilities.py) for the memory store: wrapped data keys in a dict."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from baseshift.core.capabilities import DataKeyRecord
from baseshift.core.errors import Conflict
from baseshift.core.json_text import dumps_compact, loads_strict
from baseshift.core.storecalls import StoreCalls, observed


class MemoryDataKeys:
    """The `DataKeys` methods of the memory store (`_data_keys` and `_key_state`, set by
    the store; the state kept as JSON text, so no caller shares a value with it)."""

    calls: StoreCalls

    _data_keys: dict[str, DataKeyRecord]
    _key_state: str | None

    @observed("save_data_key")
    async def save_data_key(self, key: DataKeyRecord) -> None:
        if key.id in self._data_keys:
            raise Conflict(f"data key {key.id!r} exists")
        self._data_keys[key.id] = key

    @observed("load_data_key")
    async def load_data_key(self, key_id: str) -> DataKeyRecord | None:
        return self._data_keys.get(key_id)

    @observed("data_keys_not_under")
    async def data_keys_not_under(self, kek_id: str, limit: int) -> list[DataKeyRecord]:
        found = sorted((k for k in self._data_keys.values() if k.kek_id != kek_id),
                       key=lambda k: k.id)
        return found[:limit]

    @observed("rewrap_data_key")
    async def rewrap_data_key(self, key_id: str, old_kek: str, new_kek: str,
                              wrapped: str) -> bool:
        key = self._data_keys.get(key_id)
        if key is None or key.kek_id != old_kek:
            return False
        self._data_keys[key_id] = dataclasses.replace(key, kek_id=new_kek, wrapped=wrapped)
        return True

    @observed("data_key_counts")
    async def data_key_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key in self._data_keys.values():
            counts[key.kek_id] = counts.get(key.kek_id, 0) + 1
        return counts

    @observed("key_state")
    async def key_state(self) -> Mapping[str, object] | None:
        if self._key_state is None:
            return None
        found: dict[str, Any] = loads_strict(self._key_state)
        return found

    @observed("save_key_state")
    async def save_key_state(self, state: Mapping[str, object]) -> None:
        self._key_state = dumps_compact(dict(state))
