"""The audit trail's hash chain (core/audit.py): what verification proves and what it names
when a record was edited, inserted or removed, checked on records held in a list (the
stores' own tests tamper with real tables: tests/plugins/test_audit_trail.py)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseshift.core import audit
from baseshift.core.audit import (
    GENESIS,
    Acting,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    ChainHead,
    acting_as,
    chained,
    entry_hash,
    verify,
)


class Trail:
    """An AuditLog over a list a test may tamper with."""

    audit_database = None

    def __init__(self, records: Sequence[AuditRecord], head: ChainHead) -> None:
        self.records, self.head = list(records), head

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        new, self.head = chained(self.head, entries)
        self.records += new

    async def audit_page(self, query: AuditQuery) -> list[AuditRecord]:
        return [r for r in reversed(self.records) if query.matches(r)][:query.limit]

    async def audit_records(self, after: int, limit: int) -> list[AuditRecord]:
        return sorted((r for r in self.records if r.seq > after), key=lambda r: r.seq)[:limit]

    async def audit_head(self) -> ChainHead:
        return self.head


def entries(n: int) -> list[AuditEntry]:
    return [AuditEntry("run.start", f"run:r{i}", "ann", at=1000.0 + i,
                       detail={"workflow": "hello"}) for i in range(n)]


def trail(n: int) -> Trail:
    records, head = chained(ChainHead(), entries(n))
    return Trail(records, head)


def test_an_entry_names_who_acts_now() -> None:
    assert audit.entry("run.start", "run:x").actor == "system"
    with acting_as(Acting("ann", "192.0.2.7", "req-12345678")):
        made = audit.entry("run.cancel", "run:x", reason="done")
    assert (made.actor, made.client, made.request_id, made.detail) == (
        "ann", "192.0.2.7", "req-12345678", {"reason": "done"})
    assert audit.acting() == audit.SYSTEM_ACTING


def test_records_link_each_to_the_previous_hash() -> None:
    records, head = chained(ChainHead(), entries(3))
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    assert head == ChainHead(3, records[-1].hash)
    more, _ = chained(head, entries(1))
    assert (more[0].seq, more[0].prev_hash) == (4, head.hash)


def test_the_hash_covers_every_field() -> None:
    item = AuditEntry("auth.login", "user:ann", "ann", "success", "192.0.2.7", "rq", 5.0,
                      {"method": "password"})
    digest = entry_hash(1, GENESIS, item)
    for change in ({"action": "auth.logout"}, {"resource": "user:bob"}, {"actor": "bob"},
                   {"outcome": "failure"}, {"client": "198.51.100.1"}, {"request_id": "x"},
                   {"at": 6.0}, {"detail": {"method": "oidc"}}):
        assert entry_hash(1, GENESIS, dataclasses.replace(item, **change)) != digest, change
    assert entry_hash(2, GENESIS, item) != digest
    assert entry_hash(1, "f" * 64, item) != digest


async def test_an_intact_trail_verifies() -> None:
    assert await verify(trail(0)) == (0, None)
    assert await verify(trail(2500)) == (2500, None)  # across pages of the reader


async def test_an_edited_entry_is_named() -> None:
    t = trail(5)
    r = t.records[2]
    t.records[2] = dataclasses.replace(r, entry=dataclasses.replace(r.entry, actor="mallory"))
    checked, broken = await verify(t)
    assert broken is not None and broken.seq == 3 and "edited" in broken.reason


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    t = trail(5)
    r = t.records[2]
    forged = dataclasses.replace(r.entry, outcome="failure")
    t.records[2] = dataclasses.replace(r, entry=forged,
                                       hash=entry_hash(r.seq, r.prev_hash, forged))
    _, broken = await verify(t)
    assert broken is not None and broken.seq == 4 and "does not link" in broken.reason


async def test_a_removed_entry_is_named() -> None:
    t = trail(5)
    del t.records[1]
    _, broken = await verify(t)
    assert broken is not None and broken.seq == 2 and "missing" in broken.reason


async def test_removing_the_newest_entries_is_caught_by_the_head() -> None:
    t = trail(5)
    del t.records[3:]
    _, broken = await verify(t)
    assert broken is not None and broken.seq == 4 and "head" in broken.reason


async def test_an_entry_inserted_after_the_head_is_named() -> None:
    t = trail(3)
    extra, _ = chained(t.head, entries(1))
    t.records += extra  # written around the store: the head does not know it
    _, broken = await verify(t)
    assert broken is not None and broken.seq == 4 and "beyond the head" in broken.reason


async def test_an_entry_inserted_in_the_middle_is_named() -> None:
    t = trail(4)
    fake = dataclasses.replace(t.records[1], seq=2)
    t.records.insert(2, fake)  # a second entry 2 (a store without a key would allow it)
    _, broken = await verify(t)
    assert broken is not None and broken.seq == 2 and "appears again" in broken.reason


@given(size=st.integers(1, 40), data=st.data())
async def test_any_single_change_to_any_record_is_detected(size: int,
                                                           data: st.DataObject) -> None:
    t = trail(size)
    i = data.draw(st.integers(0, size - 1))
    r = t.records[i]
    kind = data.draw(st.sampled_from(["actor", "detail", "at", "seq", "prev", "drop"]))
    match kind:
        case "actor":
            t.records[i] = dataclasses.replace(
                r, entry=dataclasses.replace(r.entry, actor=data.draw(st.text(max_size=8)
                                             .filter(lambda a: a != "ann"))))
        case "detail":
            t.records[i] = dataclasses.replace(
                r, entry=dataclasses.replace(r.entry, detail={"workflow": "other"}))
        case "at":
            t.records[i] = dataclasses.replace(
                r, entry=dataclasses.replace(r.entry, at=r.entry.at + 0.5))
        case "seq":
            t.records[i] = dataclasses.replace(r, seq=r.seq + size)
        case "prev":
            t.records[i] = dataclasses.replace(r, prev_hash="0" * 63 + "1")
        case "drop":
            del t.records[i]
    _, broken = await verify(t)
    assert broken is not None
    assert broken.seq <= i + 2


@pytest.mark.parametrize(("query", "expected"), [
    (AuditQuery(), [5, 4, 3, 2, 1]),
    (AuditQuery(limit=2), [5, 4]),
    (AuditQuery(before=4, limit=2), [3, 2]),
    (AuditQuery(resource="run:r1"), [2]),
    (AuditQuery(resource="run:"), [5, 4, 3, 2, 1]),
    (AuditQuery(resource="run"), []),
    (AuditQuery(since=1001.0, until=1003.0), [3, 2]),
    (AuditQuery(actor="bob"), []),
    (AuditQuery(action="run.start", actor="ann", before=2), [1]),
])
async def test_queries_filter_newest_first(query: AuditQuery, expected: list[int]) -> None:
    assert [r.seq for r in await trail(5).audit_page(query)] == expected


async def test_record_appends_only_to_a_store_that_keeps_a_trail() -> None:
    t = trail(1)
    await audit.record(t, entries(2))
    assert t.head.seq == 3 and (await verify(t))[1] is None
    await audit.record(object(), entries(1))  # no trail: nothing to do, no error
