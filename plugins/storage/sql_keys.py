"""`DataKeys` (core/capabilities.py) for the SQL state stores: the `data_keys` table of
wrapped data keys, and the key plugin's state as one row of `meta`."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from baseshift.core.capabilities import DataKeyRecord
from baseshift.core.json_text import dumps_compact, loads_strict
from baseshift.core.storecalls import StoreCalls, observed

from .sql_models import META, METADATA

T = TypeVar("T")

DATA_KEYS = Table(
    "data_keys", METADATA,
    Column("id", Text, primary_key=True),
    Column("purpose", Text, nullable=False),
    Column("kek_id", Text, nullable=False),
    Column("wrapped", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_data_keys_kek", DATA_KEYS.c.kek_id)

STATE_KEY = "keys.state"
"""The `meta` row holding the key plugin's state document."""


def _record(row: Any) -> DataKeyRecord:
    return DataKeyRecord(row.id, row.purpose, row.kek_id, row.wrapped, float(row.created_at))


def load(conn: Connection, key_id: str) -> DataKeyRecord | None:
    row = conn.execute(select(DATA_KEYS).where(DATA_KEYS.c.id == key_id)).one_or_none()
    return None if row is None else _record(row)


def not_under(conn: Connection, kek_id: str, limit: int) -> list[DataKeyRecord]:
    stmt = (select(DATA_KEYS).where(DATA_KEYS.c.kek_id != kek_id)
            .order_by(DATA_KEYS.c.id).limit(limit))
    return [_record(r) for r in conn.execute(stmt)]


def rewrap(conn: Connection, key_id: str, old_kek: str, new_kek: str, wrapped: str) -> bool:
    c = DATA_KEYS.c
    done = conn.execute(update(DATA_KEYS).where(c.id == key_id, c.kek_id == old_kek)
                        .values(kek_id=new_kek, wrapped=wrapped))
    return bool(done.rowcount)


def counts(conn: Connection) -> dict[str, int]:
    stmt = select(DATA_KEYS.c.kek_id, func.count()).group_by(DATA_KEYS.c.kek_id)
    return {str(k): int(n) for k, n in conn.execute(stmt)}


def state(conn: Connection) -> Mapping[str, object] | None:
    text = conn.scalar(select(META.c.value).where(META.c.key == STATE_KEY))
    return None if text is None else dict(loads_strict(text))


def save_state(conn: Connection, value: Mapping[str, object]) -> None:
    conn.execute(delete(META).where(META.c.key == STATE_KEY))
    conn.execute(insert(META), {"key": STATE_KEY, "value": dumps_compact(dict(value))})


class SQLDataKeys(ABC):
    """The `DataKeys` methods of a SQL store whose tables include `data_keys`."""

    calls: StoreCalls

    @abstractmethod
    async def _query(self, fn: Callable[[Connection], T]) -> T: ...

    async def _transact(self, fn: Callable[[Connection], T]) -> T:
        return await self._query(fn)

    @observed("save_data_key")
    async def save_data_key(self, key: DataKeyRecord) -> None:
        values = {"id": key.id, "purpose": key.purpose, "kek_id": key.kek_id,
                  "wrapped": key.wrapped, "created_at": key.created_at}
        await self._transact(lambda c: c.execute(insert(DATA_KEYS), values))

    @observed("load_data_key")
    async def load_data_key(self, key_id: str) -> DataKeyRecord | None:
        return await self._query(lambda c: load(c, key_id))

    @observed("data_keys_not_under")
    async def data_keys_not_under(self, kek_id: str, limit: int) -> list[DataKeyRecord]:
        return await self._query(lambda c: not_under(c, kek_id, limit))

    @observed("rewrap_data_key")
    async def rewrap_data_key(self, key_id: str, old_kek: str, new_kek: str,
                              wrapped: str) -> bool:
        return await self._transact(lambda c: rewrap(c, key_id, old_kek, new_kek, wrapped))

    @observed("data_key_counts")
    async def data_key_counts(self) -> dict[str, int]:
        return await self._query(counts)

    @observed("key_state")
    async def key_state(self) -> Mapping[str, object] | None:
        return await self._query(state)

    @observed("save_key_state")
    async def save_key_state(self, value: Mapping[str, object]) -> None:
        await self._transact(lambda c: save_state(c, value))
