"""Reading the trail: the store that keeps it, and a page of it as the API and the UI show
it (filters, newest first, an opaque cursor to the next page)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from baseshift.core.audit import AuditLog, AuditQuery, AuditRecord
from baseshift.core.errors import NotFound

MAX_PAGE = 500


def trail_of(store: object) -> AuditLog:
    """The state store's audit trail; NotFound when the store keeps none."""
    if not isinstance(store, AuditLog):
        raise NotFound(f"the state store '{getattr(store, 'name', '?')}' keeps no audit trail",
                       hint="use the sqlite, postgres or memory state store")
    return store


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        return {"entries": [r.to_json() for r in self.records],
                "next_cursor": self.next_cursor}


async def audit_page(store: object, query: AuditQuery) -> AuditPage:
    """One page, and the cursor of the next when there may be more."""
    records = await trail_of(store).audit_page(query)
    more = len(records) == query.limit and records[-1].seq > 1
    return AuditPage(records, str(records[-1].seq) if more else None)
