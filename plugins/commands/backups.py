"""Each successful `baseshift backup`, kept as an entry of the store's audit trail
(`store.backup`, with the run count): the trail is shared by every server of a fleet,
tamper-evident, and what the backup control of the compliance report reads."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from baseshift.core import audit
from baseshift.core.audit import AuditLog, AuditQuery
from baseshift.core.json_text import replace_surrogates
from baseshift.core.protocols import StateStore

BACKUP_ACTION = "store.backup"


async def record_backup(store: StateStore, runs: int, target: Path) -> None:
    """Append the entry of a backup of `runs` runs written to `target`."""
    await store.open()
    try:
        await audit.record(store, [audit.entry(BACKUP_ACTION, f"store:{store.name}",
                                               runs=str(runs),
                                               file=replace_surrogates(str(target)))])
    finally:
        await store.close()


@dataclass(frozen=True, slots=True)
class LastBackup:
    at: float
    runs: str
    actor: str
    count: int
    """How many backups the trail records (counted up to 1000)."""


async def last_backup(store: AuditLog) -> LastBackup | None:
    """The newest recorded backup, or None when the trail records none."""
    records = await store.audit_page(AuditQuery(action=BACKUP_ACTION, limit=1000))
    if not records:
        return None
    newest = records[0].entry
    return LastBackup(newest.at, newest.detail.get("runs", "?"), newest.actor, len(records))
