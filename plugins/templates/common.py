"""What the template store's faces share (REST in `api_routes`, GraphQL in
`graphql_api`, the UI's template pages, the `baseshift templates` command): finding the
store, every template a server knows with where it comes from, and diffing versions."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baseshift.core.errors import NotFound
from baseshift.core.templatestore import TemplateDocument, TemplateReadOnly
from baseshift.plugins.templates.schemacompat import breaking_changes, json_diff

from .publishing import filter_versions, matches, select

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.compiled import FileTemplate
    from baseshift.core.templatestore import TemplateStore


def template_store(bs: App) -> TemplateStore:
    """The application's template store; NotFound when no backend is configured."""
    if bs.templates is None:
        raise NotFound("this server has no job template store",
                       hint="set BASESHIFT_TEMPLATES to sqlite, memory, postgres or mongo "
                       "(postgres and mongo also need their URL)")
    return bs.templates


def diff_json(old: TemplateDocument, new: TemplateDocument) -> dict[str, Any]:
    """What changed from `old` to `new` and the reasons callers of `old` would break."""
    reasons = breaking_changes(old.input_schema, old.output_schema, new.input_schema,
                               new.output_schema)
    before, after = old.to_json(), new.to_json()
    for doc in (before, after):
        for key in ("version", "created_at", "templateId", "name"):
            doc.pop(key)
    return {"name": new.name, "from": old.version, "to": new.version,
            "compatible": not reasons, "reasons": reasons, "changes": json_diff(before, after)}


@dataclass(frozen=True, slots=True)
class ListedTemplate:
    """One template version as the template faces show it: from the store, or (with its
    `path`) from a file of the workflows folder, which makes it read-only."""

    doc: TemplateDocument
    path: Path | None = None

    @property
    def read_only(self) -> bool:
        return self.path is not None

    @property
    def source(self) -> str:
        return "store" if self.path is None else "file"

    def to_json(self) -> dict[str, Any]:
        return {**self.doc.to_json(), "source": self.source,
                "path": None if self.path is None else str(self.path),
                "readOnly": self.read_only}


class KnownTemplates:
    """Every template the server's workflows can use by name, except the plugins': the
    template store's and those defined in the workflows folder's files, as the catalog last
    loaded them. A version in both is shown from the file, as the checker resolves it."""

    def __init__(self, bs: App) -> None:
        self.store = bs.templates
        self.files: tuple[FileTemplate, ...] = bs.catalog.file_templates

    async def list(self, name: str | None = None, *, type: str | None = None,
                   version: str | None = None) -> list[ListedTemplate]:
        """Every version (filtered as `TemplateStore.list` filters), by name and version."""
        found = {(d.name, d.version): ListedTemplate(d) for d in await self._stored(
            name, type, version)}
        files = [t for t in self.files if matches(t.document, name, type)]
        kept = {(d.name, d.version) for d in filter_versions((t.document for t in files),
                                                             version)}
        for t in files:
            key = (t.document.name, t.document.version)
            if key in kept:
                found[key] = ListedTemplate(t.document, t.path)
        return sorted(found.values(), key=lambda t: (t.doc.name, t.doc.semver))

    async def get(self, name: str, version: str | None = None) -> ListedTemplate | None:
        """Exact version, a range, or (None) the highest; None when nothing matches."""
        listed = {t.doc.version: t for t in await self.list(name)}
        doc = select((t.doc for t in listed.values()), version)
        return None if doc is None else listed[doc.version]

    async def require(self, name: str, version: str | None = None) -> ListedTemplate:
        listed = await self.get(name, version)
        if listed is None:
            what = f"template {name}@{version}" if version else f"template {name}"
            raise NotFound(f"{what} is not published or defined in a workflow file",
                           hint="GET /api/v1/templates lists every template")
        return listed

    def refuse_publish(self, name: str) -> None:
        """A name defined by a file stays the file's: versions published beside it would
        not be compared with the file's for compatibility."""
        for t in self.files:
            if t.document.name == name:
                raise TemplateReadOnly(name, str(t.path))

    def refuse_delete(self, name: str, version: str) -> None:
        for t in self.files:
            if t.document.name == name and t.document.version == version:
                raise TemplateReadOnly(t.document.ref, str(t.path))

    async def _stored(self, name: str | None, type: str | None,
                      version: str | None) -> Sequence[TemplateDocument]:
        if self.store is None:
            return []
        return await self.store.list(name, type=type, version=version)
