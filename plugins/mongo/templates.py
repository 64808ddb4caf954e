"""The MongoDB job template store (`templates = "mongo"`): one document per published version
in the `job_templates` collection, in the seed's shape (`templateId`, `version`, `steps`, ...).

Publishing needs no transaction (a standalone server has none): every version document of a
template carries `seq`, its place in that template's publishing order, under a unique index
on `(templateId, seq)`. A publisher reads the versions, checks them with `check_publish` and
inserts with the next `seq`; when another server published in between, the insert hits the
unique index and the publisher reads and checks again. A deleted version stays as a document
with `retired: true`, so its number and its `seq` are never reused.
"""
from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from baseshift.core.audit import AuditEntry
from baseshift.core.errors import StoreError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.plan import TemplateSpec
from baseshift.core.registry import Backend
from baseshift.core.settings import Settings
from baseshift.core.templatestore import (
    DOCUMENT_KEYS,
    Bump,
    TemplateDocument,
    TemplateError,
    not_found,
    parse_document,
)
from baseshift.plugins.extras import MONGO
from baseshift.plugins.templates.publishing import (
    check_publish,
    filter_versions,
    sorted_docs,
)
from baseshift.plugins.templates.publishing import select as select_version

from ..templates.specs import SpecCache
from .documents import Document, MongoConnection, mongo_url

if TYPE_CHECKING:
    from pymongo.collection import Collection

COLLECTION = "job_templates"
MAX_TRIES = 64
"""Publish attempts before giving up; each lost attempt means another publish succeeded."""
FIELDS = {key: 1 for key in DOCUMENT_KEYS} | {"_id": 0}
ORDER = [("templateId", 1), ("major", 1), ("minor", 1), ("patch", 1)]


def _row(doc: TemplateDocument, seq: int) -> Document:
    v = doc.semver
    return {**doc.to_json(), "seq": seq, "retired": False,
            "major": v.major, "minor": v.minor, "patch": v.patch}


def _doc(row: Document) -> TemplateDocument:
    return parse_document({k: v for k, v in row.items() if k in DOCUMENT_KEYS})


class MongoTemplateStore:
    """A `TemplateStore` in MongoDB; see the module docstring for how publishing stays
    consistent when several servers publish at once."""

    kind: ClassVar[str] = "templates"
    name: ClassVar[str] = "mongo"

    def __init__(self, connection: MongoConnection) -> None:
        self.connection = connection
        self._cache = SpecCache()

    @classmethod
    def from_settings(cls, settings: Settings) -> MongoTemplateStore:
        return cls(MongoConnection(mongo_url(settings, "templates")))

    def mongo_connection(self) -> MongoConnection:
        """`SharesMongoConnection`: job results in MongoDB use this store's client."""
        return self.connection

    @property
    def _col(self) -> Collection[Document]:
        return self.connection.collection(COLLECTION)

    async def open(self) -> None:
        await self.connection.open()
        await self.connection.run(f"creating the indexes of {COLLECTION}", self._indexes)

    def _indexes(self) -> None:
        self._col.create_index([("templateId", 1), ("version", 1)], unique=True,
                               name="templateId_version")
        self._col.create_index([("templateId", 1), ("seq", 1)], unique=True,
                               name="templateId_seq")

    async def close(self) -> None:
        await self.connection.close()

    @property
    def audit_database(self) -> str | None:
        """None: MongoDB keeps no audit trail here; the state store's takes the entries."""
        return None

    async def publish(self, doc: TemplateDocument, bump: Bump | str | None = None,
                      audit: Sequence[AuditEntry] = ()) -> TemplateDocument:
        _refuse(audit)
        return await self.connection.run(f"publishing template {doc.ref}", self._publish,
                                         doc, bump)

    def _publish(self, doc: TemplateDocument, bump: Bump | str | None) -> TemplateDocument:
        from bson.errors import InvalidDocument
        from pymongo.errors import DuplicateKeyError

        for _ in range(MAX_TRIES):
            rows = list(self._col.find({"templateId": doc.name}))
            seqs = sorted(int(r.get("seq", 0)) for r in rows)
            if seqs != list(range(1, len(rows) + 1)):
                continue  # a document landed while we read (or was removed by hand)
            stored = self._check(doc, rows, bump)
            try:
                self._col.insert_one(_row(stored, len(rows) + 1))
            except DuplicateKeyError:
                continue  # another server published first: check against its version too
            except (InvalidDocument, OverflowError) as exc:
                raise TemplateError((), f"cannot be stored in MongoDB: {exc}") from None
            return stored
        raise StoreError(f"publishing template {doc.ref} did not settle after {MAX_TRIES} "
                         f"tries", hint=f"if documents of {doc.name} were removed from "
                         f"{COLLECTION} by hand, their seq numbers now have gaps: restore "
                         "them (delete versions with `baseshift templates delete`)")

    @staticmethod
    def _check(doc: TemplateDocument, rows: list[Document],
               bump: Bump | str | None) -> TemplateDocument:
        return check_publish(doc, [_doc(r) for r in rows if not r.get("retired")], bump,
                             retired={r["version"] for r in rows if r.get("retired")})

    async def get(self, name: str, version: str | None = None) -> TemplateDocument | None:
        docs = await self._find({"templateId": name})
        return select_version(docs, version)

    async def delete(self, name: str, version: str, audit: Sequence[AuditEntry] = ()) -> None:
        _refuse(audit)

        def retire() -> int:
            result = self._col.update_one(
                {"templateId": name, "version": version, "retired": False},
                {"$set": {"retired": True, "retired_at": time.time()}})
            return result.matched_count

        if await self.connection.run(f"deleting template {name}@{version}", retire) == 0:
            raise not_found(name, version)

    async def specs(self) -> list[TemplateSpec]:
        return self._cache.specs(await self.list())

    async def list(self, name: str | None = None, *, type: str | None = None,
                   version: str | None = None) -> list[TemplateDocument]:
        query: Document = {}
        if name is not None:
            query["templateId"] = name
        if type is not None:
            query["steps.type"] = type
        return sorted_docs(filter_versions(await self._find(query), version))

    async def _find(self, query: Document) -> builtins.list[TemplateDocument]:
        """Published (not retired) versions matching `query`, by name and version."""
        def find() -> builtins.list[Document]:
            found = self._col.find({**query, "retired": False}, FIELDS, sort=ORDER)
            return builtins.list(found)

        rows = await self.connection.run("reading templates", find)
        return [_doc(r) for r in rows]


@hookimpl
def register_backends() -> list[Backend]:
    """Offer the MongoDB template store (`templates = "mongo"`, with `mongo_url`)."""
    return [Backend("templates", "mongo", "baseshift.plugins.mongo.templates:MongoTemplateStore",
                    requires=MONGO)]


def _refuse(audit: Sequence[AuditEntry]) -> None:
    if audit:
        raise ValueError("the mongo template store keeps no audit trail (audit_database is "
                         "None): append the entries to the state store's")
