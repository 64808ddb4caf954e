"""The in-memory job template store (`templates = "memory"`), for tests and throwaway servers."""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from baseshift.core.audit import AuditEntry
from baseshift.core.hookspecs import hookimpl
from baseshift.core.plan import TemplateSpec
from baseshift.core.registry import Backend
from baseshift.core.settings import Settings
from baseshift.core.templatestore import Bump, TemplateDocument, not_found

from ..storage.memory_audit import AuditTrail, MemoryAudit
from .publishing import (
    check_publish,
    filter_versions,
    matches,
    select,
    sorted_docs,
)
from .specs import SpecCache


class MemoryTemplateStore(MemoryAudit):
    """A `TemplateStore` in a dictionary; gone when the process ends. Its audit trail is
    its own (`audit_database` None): the caller appends to the state store's instead."""

    kind: ClassVar[str] = "templates"
    name: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], TemplateDocument] = {}
        self._retired: set[tuple[str, str]] = set()
        self._cache = SpecCache()
        self._trail = AuditTrail()

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryTemplateStore:
        return cls()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, doc: TemplateDocument, bump: Bump | str | None = None,
                      audit: Sequence[AuditEntry] = ()) -> TemplateDocument:
        existing = [d for (name, _), d in self._docs.items() if name == doc.name]
        retired = {v for (name, v) in self._retired if name == doc.name}
        stored = check_publish(doc, existing, bump, retired=retired)
        self._docs[(stored.name, stored.version)] = stored
        self._write_audit(audit)
        return stored

    async def get(self, name: str, version: str | None = None) -> TemplateDocument | None:
        return select((d for (n, _), d in self._docs.items() if n == name), version)

    async def delete(self, name: str, version: str, audit: Sequence[AuditEntry] = ()) -> None:
        if self._docs.pop((name, version), None) is None:
            raise not_found(name, version)
        self._retired.add((name, version))
        self._write_audit(audit)

    async def specs(self) -> list[TemplateSpec]:
        return self._cache.specs(sorted_docs(self._docs.values()))

    async def list(self, name: str | None = None, *, type: str | None = None,
                   version: str | None = None) -> list[TemplateDocument]:
        found = [d for d in self._docs.values() if matches(d, name, type)]
        return sorted_docs(filter_versions(found, version))


@hookimpl
def register_backends() -> list[Backend]:
    """Offer the in-memory template store (`templates = "memory"`)."""
    return [Backend("templates", "memory",
                    "baseshift.plugins.templates.memory:MemoryTemplateStore")]
