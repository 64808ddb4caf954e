"""The identity tables of the SQL state stores (core/identity.py): users, roles and their
permissions, grants, API and refresh tokens, signing keys.

They join the store's metadata (sql_models.METADATA), so SQLite creates them beside the runs,
in a database made before they existed too; PostgreSQL creates them in a migration
(pg_schema.py) with the same columns. Plain Core tables rather than SQLModel classes: the
stores only ever use Core statements, and the foreign keys read more plainly this way.

Roles and permissions are rows of their own, joined by id, so deleting a role removes every
grant of it (to users and to API tokens) and replacing one keeps its grants. Users are never
deleted, only disabled. Only digests and hashes of secrets are kept, as the records hold them.
"""
from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
)

from .sql_models import METADATA


def _user_id() -> Column[str]:
    return Column("user_id", Text, ForeignKey("users.id"), nullable=False)


def _role_id() -> Column[int]:
    return Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"),
                  nullable=False)


USERS = Table(
    "users", METADATA,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("password_hash", Text),
    Column("totp_secret", Text),
    Column("totp_confirmed", Boolean, nullable=False),
    Column("totp_last_step", BigInteger),
    Column("disabled", Boolean, nullable=False),
    Column("must_change_password", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

RECOVERY_CODES = Table(
    # One row per unused code: spending one is a DELETE, which two logins cannot both do.
    "recovery_codes", METADATA,
    _user_id(),
    Column("code_hash", Text, nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "code_hash"),
)

ROLES = Table(
    "roles", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("summary", Text, nullable=False),
    Column("mfa", Boolean, nullable=False),
    Column("builtin", Boolean, nullable=False),
)

PERMISSIONS = Table(
    "permissions", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
)

ROLE_PERMISSIONS = Table(
    "role_permissions", METADATA,
    _role_id(),
    Column("permission_id", Integer, ForeignKey("permissions.id", ondelete="CASCADE"),
           nullable=False),
    PrimaryKeyConstraint("role_id", "permission_id"),
)

USER_ROLES = Table(
    # A grant: `scope` is a workflow name pattern, '*' for everywhere; `position` keeps the
    # order the grants were given in.
    "user_roles", METADATA,
    _user_id(),
    _role_id(),
    Column("scope", Text, nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "role_id", "scope"),
)

API_TOKENS = Table(
    "api_tokens", METADATA,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    _user_id(),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
)

API_TOKEN_ROLES = Table(
    "api_token_roles", METADATA,
    Column("token_id", Text, ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False),
    _role_id(),
    Column("scope", Text, nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("token_id", "role_id", "scope"),
)

REFRESH_TOKENS = Table(
    "refresh_tokens", METADATA,
    Column("token_hash", Text, primary_key=True),
    Column("family", Text, nullable=False),
    _user_id(),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    Column("revoked_at", Float),
)

SIGNING_KEYS = Table(
    "signing_keys", METADATA,
    Column("kid", Text, primary_key=True),
    Column("algorithm", Text, nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("retired_at", Float),
)

# Foreign keys are not indexed by themselves: these serve the lookups and revocations by
# owner or family, and the cascades of a role's deletion.
Index("ix_api_tokens_user_created", API_TOKENS.c.user_id, API_TOKENS.c.created_at)
Index("ix_refresh_tokens_family", REFRESH_TOKENS.c.family)
Index("ix_refresh_tokens_user", REFRESH_TOKENS.c.user_id)
Index("ix_user_roles_role", USER_ROLES.c.role_id)
Index("ix_api_token_roles_role", API_TOKEN_ROLES.c.role_id)

IDENTITY_TABLES: tuple[Table, ...] = (
    USERS, RECOVERY_CODES, ROLES, PERMISSIONS, ROLE_PERMISSIONS, USER_ROLES, API_TOKENS,
    API_TOKEN_ROLES, REFRESH_TOKENS, SIGNING_KEYS)
