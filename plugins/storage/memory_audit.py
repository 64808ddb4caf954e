"""The audit trail in memory (core/audit.py), for the memory state and template stores: the
same chain as the SQL stores keep, in a list. Appending never awaits, so it is atomic with
the change it is called after."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from baseshift.core.audit import (
    AuditEntry,
    AuditQuery,
    AuditRecord,
    ChainHead,
    chained,
    prune_entry,
)
from baseshift.core.storecalls import StoreCalls, observed


@dataclass(slots=True)
class AuditTrail:
    """Chained records, oldest first, and the head."""

    records: list[AuditRecord] = field(default_factory=list)
    head: ChainHead = field(default_factory=ChainHead)
    anchor: ChainHead = field(default_factory=ChainHead)

    def append(self, entries: Sequence[AuditEntry]) -> None:
        records, self.head = chained(self.head, entries)
        self.records.extend(records)


class MemoryAudit:
    """The `AuditLog` methods of a memory store (`_trail`, set by the store)."""

    calls: StoreCalls

    _trail: AuditTrail

    @property
    def audit_database(self) -> str | None:
        return None

    def _write_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._trail.append(entries)

    @observed("append_audit")
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._trail.append(entries)

    @observed("audit_page")
    async def audit_page(self, query: AuditQuery) -> list[AuditRecord]:
        found = (r for r in reversed(self._trail.records) if query.matches(r))
        return [r for _, r in zip(range(query.limit), found, strict=False)]

    @observed("audit_records")
    async def audit_records(self, after: int, limit: int) -> list[AuditRecord]:
        return [r for r in self._trail.records if r.seq > after][:limit]

    @observed("audit_head")
    async def audit_head(self) -> ChainHead:
        return self._trail.head

    @observed("audit_anchor")
    async def audit_anchor(self) -> ChainHead:
        return self._trail.anchor

    @observed("prune_audit")
    async def prune_audit(self, before: float, dry_run: bool = False) -> int:
        records = self._trail.records
        count = next((i for i, r in enumerate(records) if r.entry.at >= before), len(records))
        if count and not dry_run:
            last = records[count - 1]
            self._trail.anchor = ChainHead(last.seq, last.hash)
            del records[:count]
            self._trail.append([prune_entry(self._trail.anchor, count)])
        return count
