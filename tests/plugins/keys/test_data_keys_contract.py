"""The `DataKeys` ability (core/capabilities.py) on every builtin state store: saving and
loading wrapped data keys, listing those not under a KEK in batches, the compare-and-set
re-wrap, the counts per KEK and the key state document."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.backends import STATE
from baseshift.core.capabilities import DataKeyRecord, DataKeys
from tests.plugins.backends import names, opened_state_store


@pytest.fixture(params=names(STATE))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with opened_state_store(request.param, tmp_path) as s:
        assert isinstance(s, DataKeys)
        yield s


def a_key(n: int, kek: str = "kek-a", purpose: str = "store") -> DataKeyRecord:
    return DataKeyRecord(f"dk_{n:032x}", purpose, kek, f"wrapped-{n}", 100.0 + n)


async def test_a_saved_key_loads_as_it_was_saved(store: Any) -> None:
    await store.save_data_key(a_key(1, purpose="api"))
    assert await store.load_data_key(a_key(1).id) == a_key(1, purpose="api")
    assert await store.load_data_key("dk_missing") is None


async def test_keys_not_under_a_kek_come_in_batches_until_none_is_left(store: Any) -> None:
    for n in range(5):
        await store.save_data_key(a_key(n, "kek-a" if n % 2 else "kek-b"))
    await store.save_data_key(a_key(9, "kek-new"))
    first = await store.data_keys_not_under("kek-new", 3)
    assert len(first) == 3 and all(k.kek_id != "kek-new" for k in first)
    moved = set()
    while batch := await store.data_keys_not_under("kek-new", 2):
        for key in batch:
            assert await store.rewrap_data_key(key.id, key.kek_id, "kek-new", "again")
            moved.add(key.id)
    assert moved == {a_key(n).id for n in range(5)}
    assert await store.data_key_counts() == {"kek-new": 6}
    assert (await store.load_data_key(a_key(0).id)).wrapped == "again"


async def test_rewrap_is_a_compare_and_set_on_the_kek(store: Any) -> None:
    await store.save_data_key(a_key(1, "kek-a"))
    assert not await store.rewrap_data_key(a_key(1).id, "kek-other", "kek-b", "x")
    assert (await store.load_data_key(a_key(1).id)) == a_key(1, "kek-a")
    assert await store.rewrap_data_key(a_key(1).id, "kek-a", "kek-b", "x")
    assert not await store.rewrap_data_key(a_key(1).id, "kek-a", "kek-c", "y")
    assert not await store.rewrap_data_key("dk_missing", "kek-a", "kek-b", "x")
    assert (await store.load_data_key(a_key(1).id)).kek_id == "kek-b"


async def test_counts_per_kek(store: Any) -> None:
    assert await store.data_key_counts() == {}
    for n, kek in enumerate(["a", "a", "b"]):
        await store.save_data_key(a_key(n, kek))
    assert await store.data_key_counts() == {"a": 2, "b": 1}


async def test_the_key_state_is_a_json_document_replaced_whole(store: Any) -> None:
    assert await store.key_state() is None
    await store.save_key_state({"rotating_to": "k2", "started_at": 1.5})
    await store.save_key_state({"last_rotation": {"kek_id": "k2", "retired": ["k1"]}})
    assert await store.key_state() == {"last_rotation": {"kek_id": "k2", "retired": ["k1"]}}
