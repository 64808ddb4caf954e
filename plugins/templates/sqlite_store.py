"""The SQLite job template store (`templates = "sqlite"`, the default): one row per published
version in the `job_template` table of the state store's database file."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    URL,
    Connection,
    Engine,
    UniqueConstraint,
    delete,
    insert,
    make_url,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from baseshift.core.audit import AuditEntry
from baseshift.core.errors import StoreError
from baseshift.core.plan import TemplateSpec
from baseshift.core.settings import Settings
from baseshift.core.templatestore import (
    Bump,
    TemplateDocument,
    TemplateExists,
    not_found,
    parse_document,
)

from ..storage import sql_audit
from ..storage.sqlite_file import DB_FILENAME, database_key, immediate, sqlite_engine
from .publishing import check_publish, filter_versions, matches, sorted_docs
from .publishing import select as select_version
from .specs import SpecCache

T = TypeVar("T")
WRITE_TRIES = 5
SERIALIZATION_FAILURE = "40001"

# Our own registry: these tables never mix with the state store's metadata or schema version.
TEMPLATE_REGISTRY = registry()


class _TemplateModel(SQLModel, registry=TEMPLATE_REGISTRY):
    """Base of the template store's tables."""


class JobTemplateRow(_TemplateModel, table=True):
    """One published template version; the document is kept whole as JSON."""

    __tablename__ = "job_template"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_job_template_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: str
    major: int
    minor: int
    patch: int
    description: str | None = None
    document: dict[str, Any] = Field(sa_type=JSON(), nullable=False)
    created_at: float


class RetiredTemplateRow(_TemplateModel, table=True):
    """A deleted version: its number is never published again (runs may have pinned it)."""

    __tablename__ = "job_template_retired"

    name: str = Field(primary_key=True)
    version: str = Field(primary_key=True)


TABLE = JobTemplateRow.__table__  # type: ignore[attr-defined]
RETIRED = RetiredTemplateRow.__table__  # type: ignore[attr-defined]


def _row(doc: TemplateDocument) -> dict[str, Any]:
    v = doc.semver
    return {"name": doc.name, "version": doc.version, "major": v.major, "minor": v.minor,
            "patch": v.patch, "description": doc.description, "document": doc.to_json(),
            "created_at": doc.created_at or 0.0}


def _doc(document: Any) -> TemplateDocument:
    data = json.loads(document) if isinstance(document, str) else document
    return parse_document(data)


class SQLiteTemplateStore:
    """A `TemplateStore` in SQLite, by default beside the runs in `data_dir/baseshift.db`.

    `publish` reads the name's versions and inserts in one `BEGIN IMMEDIATE` transaction, so
    two processes publishing at once cannot both pass the compatibility check.
    """

    kind: ClassVar[str] = "templates"
    name: ClassVar[str] = "sqlite"

    def __init__(self, url: str | URL) -> None:
        self.url = make_url(url)
        self._engine: Engine | None = None
        self._cache = SpecCache()

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteTemplateStore:
        return cls(URL.create("sqlite", database=str(settings.data_dir / DB_FILENAME)))

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError(f"template store {self.url!s} is not open")
        return self._engine

    async def open(self) -> None:
        if self._engine is not None:
            return
        engine = self._new_engine()
        try:
            with self._writer(engine).begin() as conn:
                TEMPLATE_REGISTRY.metadata.create_all(conn)
                sql_audit.ensure_tables(conn)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine

    def _new_engine(self) -> Engine:
        """The engine `open` uses; the PostgreSQL store overrides it with its own."""
        return sqlite_engine(self.url)

    @staticmethod
    def _writer(engine: Engine) -> Engine:
        """`engine` as publish and delete use it (PostgreSQL: SERIALIZABLE instead)."""
        return immediate(engine)

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None

    @property
    def audit_database(self) -> str | None:
        """The database whose audit trail `audit` entries go to (core/templatestore.py)."""
        return database_key(self.url)

    async def publish(self, doc: TemplateDocument, bump: Bump | str | None = None,
                      audit: Sequence[AuditEntry] = ()) -> TemplateDocument:
        def publish(conn: Connection) -> TemplateDocument:
            existing = self._versions(conn, doc.name)
            retired = conn.scalars(select(RETIRED.c.version).where(RETIRED.c.name == doc.name))
            stored = check_publish(doc, existing, bump, retired=set(retired))
            conn.execute(insert(TABLE), _row(stored))
            sql_audit.append(conn, audit)
            return stored

        try:
            return self._write(publish)
        except IntegrityError as exc:
            raise TemplateExists(f"template {doc.ref} is already published") from exc
        except OperationalError as exc:
            raise StoreError(f"publishing template {doc.ref} failed: {exc.orig}",
                             hint=f"check the database file {self.url.database}") from exc

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """`fn` in a write transaction, tried again (a few times) when PostgreSQL could
        not serialise it with a concurrent one: it then sees what that one wrote."""
        for _ in range(WRITE_TRIES - 1):
            try:
                with self._writer(self.engine).begin() as conn:
                    return fn(conn)
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != SERIALIZATION_FAILURE:
                    raise
        with self._writer(self.engine).begin() as conn:
            return fn(conn)

    def _versions(self, conn: Connection, name: str) -> list[TemplateDocument]:
        rows = conn.execute(select(TABLE.c.document).where(TABLE.c.name == name))
        return [_doc(r.document) for r in rows]

    async def get(self, name: str, version: str | None = None) -> TemplateDocument | None:
        with self.engine.begin() as conn:
            return select_version(self._versions(conn, name), version)

    async def delete(self, name: str, version: str, audit: Sequence[AuditEntry] = ()) -> None:
        def retire(conn: Connection) -> None:
            stmt = delete(TABLE).where(TABLE.c.name == name, TABLE.c.version == version)
            if conn.execute(stmt).rowcount == 0:
                raise not_found(name, version)
            conn.execute(insert(RETIRED), {"name": name, "version": version})
            sql_audit.append(conn, audit)

        self._write(retire)

    async def specs(self) -> list[TemplateSpec]:
        return self._cache.specs(await self.list())

    async def list(self, name: str | None = None, *, type: str | None = None,
                   version: str | None = None) -> list[TemplateDocument]:
        stmt = select(TABLE.c.document).order_by(
            TABLE.c.name, TABLE.c.major, TABLE.c.minor, TABLE.c.patch)
        if name is not None:
            stmt = stmt.where(TABLE.c.name == name)
        with self.engine.begin() as conn:
            docs = [_doc(r.document) for r in conn.execute(stmt)]
        return sorted_docs(filter_versions((d for d in docs if matches(d, name, type)), version))
