"""The backup control of the compliance report (`compliance_controls`): the newest
`baseshift backup` the audit trail records must be younger than `backup_max_days`
(`[plugins.compliance]`, default 7)."""
from __future__ import annotations

import time

from baseshift.core.appface import App
from baseshift.core.audit import AuditLog
from baseshift.core.capabilities import Backups
from baseshift.core.compliance import Control
from baseshift.core.config import option
from baseshift.core.hookspecs import hookimpl

from .backups import last_backup

BACKUP_MAX_DAYS = 7.0
DAY = 86400.0
BACKUP = {"GDPR": ("Article 32(1)(c)",), "HIPAA": ("164.308(a)(7)(ii)(A)",),
          "SOC 2": ("A1.2",)}


@hookimpl
async def compliance_controls(baseshift: App) -> list[Control]:
    max_days = option(baseshift.settings, "compliance", "backup_max_days", BACKUP_MAX_DAYS)
    return [await backup(baseshift.store, max_days)]


async def backup(store: object, max_days: float, now: float | None = None) -> Control:
    title = f"Backup of the state store within the last {max_days:g} days"
    name = getattr(store, "name", "?")
    if not isinstance(store, Backups):
        return Control("store.backup", title, "pending",
                       f"the state store '{name}' cannot be backed up by `baseshift backup`",
                       BACKUP)
    if not isinstance(store, AuditLog):
        return Control("store.backup", title, "pending",
                       f"the state store '{name}' keeps no audit trail to record backups in",
                       BACKUP)
    last = await last_backup(store)
    if last is None:
        return Control("store.backup", title, "pending",
                       "no backup recorded: `baseshift backup FILE` was never run", BACKUP)
    now = time.time() if now is None else now
    age = max(0.0, now - last.at) / DAY
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last.at))
    return Control("store.backup", title, "implemented" if age < max_days else "pending",
                   f"last backup {when} ({age:.1f} day(s) ago, at most {max_days:g}) by "
                   f"{last.actor}: {last.runs} run(s); {last.count} backup(s) recorded",
                   BACKUP)
