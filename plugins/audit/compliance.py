"""The audit control of the compliance report (`compliance_controls`): the trail's hash chain
verified against the state store when the report is asked for (as `baseshift audit verify`
does)."""
from __future__ import annotations

from baseshift.core.appface import App
from baseshift.core.audit import AuditLog, verify
from baseshift.core.compliance import Control
from baseshift.core.hookspecs import hookimpl

AUDIT = {"GDPR": ("Article 30", "Article 32"), "HIPAA": ("164.312(b)", "164.312(c)(1)"),
         "SOC 2": ("CC7.2", "CC7.3")}
TITLE = "Audit trail complete and untampered (hash chain verified)"


@hookimpl
async def compliance_controls(baseshift: App) -> list[Control]:
    return [await audit_chain(baseshift.store)]


async def audit_chain(store: object) -> Control:
    if not isinstance(store, AuditLog):
        return Control("audit.chain", TITLE, "pending",
                       f"the state store '{getattr(store, 'name', '?')}' keeps no audit trail",
                       AUDIT)
    checked, broken = await verify(store)
    head = await store.audit_head()
    if broken is not None:
        return Control("audit.chain", TITLE, "pending",
                       f"chain BROKEN at entry {broken.seq}: {broken.reason} ({checked} "
                       "entries checked)", AUDIT)
    return Control("audit.chain", TITLE, "implemented",
                   f"chain intact: {checked} entries checked, head #{head.seq} "
                   f"{head.hash[:16]}", AUDIT)
