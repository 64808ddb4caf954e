"""Publishing and deleting templates with their audit entries (core/audit.py), for every face
that does it (the REST API, `baseshift templates`).

A template store in the state store's database writes the entry in the transaction of the
change; another (memory, MongoDB, a different database) makes the change first and the entry
goes to the state store's trail right after it."""
from __future__ import annotations

from dataclasses import replace

from baseshift.core import audit
from baseshift.core.templatestore import Bump, TemplateDocument, TemplateStore


async def publish(state: object, store: TemplateStore, doc: TemplateDocument,
                  bump: Bump | str | None) -> TemplateDocument:
    """Publish `doc` into `store`; `state` is the state store keeping the audit trail."""
    detail = {"bump": str(bump)} if bump is not None else {"version": doc.version}
    entry = replace(audit.entry("template.publish", f"template:{doc.name}"), detail=detail)
    if audit.shares_trail(state, store):
        return await store.publish(doc, bump, audit=[entry])
    stored = await store.publish(doc, bump)
    await audit.record(state, [replace(entry, detail={**detail, "version": stored.version})])
    return stored


async def delete(state: object, store: TemplateStore, name: str, version: str) -> None:
    """Delete one version from `store`; `state` keeps the audit trail."""
    entry = audit.entry("template.delete", f"template:{name}", version=version)
    if audit.shares_trail(state, store):
        await store.delete(name, version, audit=[entry])
        return
    await store.delete(name, version)
    await audit.record(state, [entry])
