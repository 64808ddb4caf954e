"""The PostgreSQL job template store (`templates = "postgres"`): the SQLite template store's
tables and queries in the `database_url` schema, so every server and worker sees the same
published templates. Publishing runs SERIALIZABLE: of two servers publishing versions of one
template at once, one commits and the other fails with a conflict to retry, so a release can
never skip the compatibility check against a version published meanwhile."""
from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Engine, create_engine

from baseshift.core.settings import Settings

from ..storage.pg_connect import PgTarget
from .sqlite_store import SQLiteTemplateStore


class PostgresTemplateStore(SQLiteTemplateStore):
    """Templates in PostgreSQL; see the module docstring."""

    name: ClassVar[str] = "postgres"

    def __init__(self, target: PgTarget) -> None:
        super().__init__("sqlite://")  # the URL only names the store in messages
        self.target = target

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresTemplateStore:
        return cls(PgTarget.required(settings))

    def _new_engine(self) -> Engine:
        self.target.connect(create_schema=True).close()  # one clear error when unreachable
        return create_engine("postgresql+psycopg://", creator=self.target.connect,
                             pool_size=2, max_overflow=2, pool_pre_ping=True)

    @property
    def audit_database(self) -> str | None:
        return self.target.key

    @staticmethod
    def _writer(engine: Engine) -> Engine:
        return engine.execution_options(isolation_level="SERIALIZABLE")
