"""The PostgreSQL store's schema: numbered migrations applied in place, and monthly partitions.

`migrate` brings a database at any earlier version up to `SCHEMA_VERSION` in one transaction,
under an advisory lock so two processes starting at once do not both migrate. A migration is
never edited once released: a change is a new migration, and tests upgrade from every earlier
version.

`runs` (by `created_at`) and `attempts` (by `started_at`) are range-partitioned by calendar
month (UTC, epoch seconds as bounds). A DEFAULT partition catches anything outside the
partitions made so far, so a write never fails for want of a partition; `ensure_partitions`
creates the coming months ahead, moving any rows the default partition already holds for them.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import psycopg

from baseshift.core.errors import ConfigError

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, jobs and attempts
    """
    CREATE TABLE runs (
        id text NOT NULL,
        workflow text NOT NULL,
        version text NOT NULL,
        source text NOT NULL,
        path text NOT NULL,
        inputs json NOT NULL,
        state text NOT NULL,
        created_at double precision NOT NULL,
        started_at double precision,
        ended_at double precision,
        outputs json,
        error text,
        PRIMARY KEY (created_at, id)
    ) PARTITION BY RANGE (created_at);
    CREATE TABLE runs_default PARTITION OF runs DEFAULT;
    CREATE INDEX ix_runs_id ON runs (id);
    CREATE INDEX ix_runs_workflow_created_id ON runs (workflow, created_at, id);
    CREATE INDEX ix_runs_state_created_id ON runs (state, created_at, id);

    CREATE TABLE jobs (
        run_id text NOT NULL,
        key text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        name text NOT NULL,
        index integer,
        state text NOT NULL,
        attempts integer NOT NULL,
        failures integer NOT NULL,
        output json,
        error text,
        inputs json,
        ready_at double precision,
        started_at double precision,
        ended_at double precision,
        next_attempt_at double precision,
        template text,
        handler boolean NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX ix_jobs_run_seq ON jobs (run_id, seq);

    CREATE TABLE attempts (
        run_id text NOT NULL,
        job_key text NOT NULL,
        number integer NOT NULL,
        state text NOT NULL,
        started_at double precision NOT NULL,
        ended_at double precision,
        error text,
        log text NOT NULL,
        PRIMARY KEY (run_id, job_key, number, started_at),
        FOREIGN KEY (run_id, job_key) REFERENCES jobs (run_id, key) ON DELETE CASCADE
    ) PARTITION BY RANGE (started_at);
    CREATE TABLE attempts_default PARTITION OF attempts DEFAULT;
    """,
    # 2: the work queue of `baseshift worker`s (plugins/queue/pg_queue.py)
    """
    CREATE TABLE job_queue (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner text NOT NULL,
        run_id text NOT NULL,
        job_key text NOT NULL,
        number integer NOT NULL,
        labels text[] NOT NULL DEFAULT '{}',
        state text NOT NULL DEFAULT 'queued',
        worker text,
        leased_until timestamptz,
        result json,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ix_job_queue_queued ON job_queue (id) WHERE state = 'queued';
    CREATE INDEX ix_job_queue_owner_state ON job_queue (owner, state);
    CREATE INDEX ix_job_queue_worker ON job_queue (worker) WHERE state = 'leased';
    """,
    # 3: what `baseshift retention` removed, and when
    """
    CREATE TABLE retired_partitions (
        name text PRIMARY KEY,
        parent text NOT NULL,
        range_start double precision NOT NULL,
        range_end double precision NOT NULL,
        rows bigint NOT NULL,
        archive text,
        retired_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 4: small documents shared by every server (the cron leader's schedule marks)
    """
    CREATE TABLE documents (
        name text PRIMARY KEY,
        value json NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 5: users, roles, grants, tokens and signing keys (plugins/storage/identity_tables.py).
    # Names and ids that lists are ordered by collate as "C" (by code point), as in SQLite.
    """
    CREATE TABLE users (
        id text PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE,
        password_hash text,
        totp_secret text,
        totp_confirmed boolean NOT NULL,
        totp_last_step bigint,
        disabled boolean NOT NULL,
        must_change_password boolean NOT NULL,
        source text NOT NULL,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE TABLE recovery_codes (
        user_id text NOT NULL REFERENCES users (id),
        code_hash text NOT NULL,
        position integer NOT NULL,
        PRIMARY KEY (user_id, code_hash)
    );
    CREATE TABLE roles (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE,
        summary text NOT NULL,
        mfa boolean NOT NULL,
        builtin boolean NOT NULL
    );
    CREATE TABLE permissions (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE
    );
    CREATE TABLE role_permissions (
        role_id integer NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
        permission_id integer NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
        PRIMARY KEY (role_id, permission_id)
    );
    CREATE TABLE user_roles (
        user_id text NOT NULL REFERENCES users (id),
        role_id integer NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
        scope text NOT NULL,
        position integer NOT NULL,
        PRIMARY KEY (user_id, role_id, scope)
    );
    CREATE INDEX ix_user_roles_role ON user_roles (role_id);
    CREATE TABLE api_tokens (
        id text COLLATE "C" PRIMARY KEY,
        name text NOT NULL,
        user_id text NOT NULL REFERENCES users (id),
        token_hash text NOT NULL UNIQUE,
        created_at double precision NOT NULL,
        expires_at double precision,
        revoked_at double precision
    );
    CREATE INDEX ix_api_tokens_user_created ON api_tokens (user_id, created_at);
    CREATE TABLE api_token_roles (
        token_id text COLLATE "C" NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
        role_id integer NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
        scope text NOT NULL,
        position integer NOT NULL,
        PRIMARY KEY (token_id, role_id, scope)
    );
    CREATE INDEX ix_api_token_roles_role ON api_token_roles (role_id);
    CREATE TABLE refresh_tokens (
        token_hash text PRIMARY KEY,
        family text NOT NULL,
        user_id text NOT NULL REFERENCES users (id),
        created_at double precision NOT NULL,
        expires_at double precision NOT NULL,
        used_at double precision,
        revoked_at double precision
    );
    CREATE INDEX ix_refresh_tokens_family ON refresh_tokens (family);
    CREATE INDEX ix_refresh_tokens_user ON refresh_tokens (user_id);
    CREATE TABLE signing_keys (
        kid text COLLATE "C" PRIMARY KEY,
        algorithm text NOT NULL,
        private_pem text NOT NULL,
        public_jwk json NOT NULL,
        created_at double precision NOT NULL,
        retired_at double precision
    );
    """,
    # 6: the audit trail (plugins/storage/sql_audit.py), and its head at the genesis hash.
    # IF NOT EXISTS: a template store on this database may have made the tables first.
    """
    CREATE TABLE IF NOT EXISTS audit_log (
        seq bigint PRIMARY KEY,
        at double precision NOT NULL,
        actor text NOT NULL,
        action text NOT NULL,
        resource text NOT NULL,
        outcome text NOT NULL,
        client text,
        request_id text,
        detail text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ix_audit_log_at ON audit_log (at);
    CREATE INDEX IF NOT EXISTS ix_audit_log_actor ON audit_log (actor, seq);
    CREATE INDEX IF NOT EXISTS ix_audit_log_resource ON audit_log (resource, seq);
    CREATE INDEX IF NOT EXISTS ix_audit_log_client ON audit_log (client, seq);
    CREATE TABLE IF NOT EXISTS audit_head (
        id integer PRIMARY KEY,
        seq bigint NOT NULL,
        hash text NOT NULL
    );
    INSERT INTO audit_head VALUES (1, 0, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
    """,
    # 7: wrapped data keys of the keys plugin (plugins/storage/sql_keys.py).
    """
    CREATE TABLE data_keys (
        id text COLLATE "C" PRIMARY KEY,
        purpose text NOT NULL,
        kek_id text NOT NULL,
        wrapped text NOT NULL,
        created_at double precision NOT NULL
    );
    CREATE INDEX ix_data_keys_kek ON data_keys (kek_id);
    """,
    # 8: retention (plugins/storage/sql_retention.py): runs on legal hold, what is left of
    # erased runs, and where a pruned audit trail starts (IF NOT EXISTS: as 6).
    """
    CREATE TABLE run_holds (
        run_id text PRIMARY KEY,
        held_at double precision NOT NULL,
        held_by text NOT NULL
    );
    CREATE TABLE run_tombstones (
        run_id text PRIMARY KEY,
        workflow text NOT NULL,
        erased_at double precision NOT NULL,
        erased_by text NOT NULL
    );
    CREATE TABLE IF NOT EXISTS audit_anchor (
        id integer PRIMARY KEY,
        seq bigint NOT NULL,
        hash text NOT NULL
    );
    """,
    # 9: workers' signs of life (plugins/queue/worker_loop.py), renewed while each runs, for
    # the `no_worker` alert rule (plugins/alerts/); a worker's row goes when it leaves.
    """
    CREATE TABLE worker_heartbeats (
        worker text PRIMARY KEY,
        labels text[] NOT NULL DEFAULT '{}',
        seen_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 10: the log store (plugins/storage/sql_loglines.py): attempt logs and the server's
    # and workers' own lines.
    """
    CREATE TABLE log_lines (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at double precision NOT NULL,
        level text NOT NULL,
        message text NOT NULL,
        source text NOT NULL,
        logger text,
        event text,
        workflow_id text,
        run_id text,
        job text,
        attempt text,
        worker text,
        trace_id text,
        span_id text,
        request_id text,
        actor text,
        error text,
        extra text
    );
    CREATE INDEX ix_log_lines_at_id ON log_lines (at, id);
    CREATE INDEX ix_log_lines_run_at ON log_lines (run_id, at);
    CREATE INDEX ix_log_lines_level_at ON log_lines (lower(level), at);
    CREATE INDEX ix_log_lines_workflow_at ON log_lines (workflow_id, at);
    CREATE INDEX ix_log_lines_trace ON log_lines (trace_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_MIGRATION_LOCK = 0x62617365  # "base": one advisory lock id for schema changes
PARTITIONED = {"runs": "created_at", "attempts": "started_at"}
MONTHS_AHEAD = 3


def migrate(conn: psycopg.Connection[Any], target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations after the database's version up to `target`, in one transaction;
    returns the version found. Refuses a database newer than this build."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = int(str(row[0])) if row else 0
        if found > SCHEMA_VERSION:
            raise ConfigError(
                f"the database has schema version {found}; this Base Shift knows versions up "
                f"to {SCHEMA_VERSION}", hint="upgrade Base Shift, or point database_url at "
                "a database made by this version")
        for number in range(found + 1, target + 1):
            conn.execute(MIGRATIONS[number - 1].encode())
        if target > found:
            conn.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key) "
                         "DO UPDATE SET value = EXCLUDED.value", (str(target),))
    return found


@dataclass(frozen=True, slots=True)
class Month:
    """One calendar month (UTC) as the epoch-second range of its partition."""

    year: int
    month: int

    @classmethod
    def of(cls, seconds: float) -> Month:
        d = dt.datetime.fromtimestamp(seconds, dt.UTC)
        return cls(d.year, d.month)

    @property
    def start(self) -> float:
        return dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC).timestamp()

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def end(self) -> float:
        return self.next().start

    def suffix(self) -> str:
        return f"y{self.year:04d}m{self.month:02d}"


_PARTITION_NAME = re.compile(r"^(runs|attempts)_y(\d{4})m(\d{2})$")


def month_of_partition(name: str) -> Month | None:
    match = _PARTITION_NAME.fullmatch(name)
    return Month(int(match[2]), int(match[3])) if match else None


def ensure_partitions(conn: psycopg.Connection[Any], now: float,
                      ahead: int = MONTHS_AHEAD) -> float:
    """Create the partitions of this month and the `ahead` next ones where missing; returns
    the end of the last one (writes before it need no new partition)."""
    month = Month.of(now)
    existing = set(partitions(conn))
    for _ in range(ahead + 1):
        for table, column in PARTITIONED.items():
            name = f"{table}_{month.suffix()}"
            if name not in existing:
                _create_partition(conn, table, column, name, month)
        month = month.next()
    return month.start


def partitions(conn: psycopg.Connection[Any]) -> list[str]:
    """Names of the monthly partitions of the partitioned tables, in this schema."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = ANY(%s) AND p.relnamespace = current_schema()::regnamespace",
        (list(PARTITIONED),)).fetchall()
    return sorted(str(r[0]) for r in rows if month_of_partition(str(r[0])))


def _create_partition(conn: psycopg.Connection[Any], table: str, column: str, name: str,
                      month: Month) -> None:
    """Attach a month's partition; rows the DEFAULT partition holds for that month move in
    the same transaction (PostgreSQL refuses the partition while they are there)."""
    with conn.transaction():
        conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        if name in partitions(conn):  # another process made it meanwhile
            return
        conn.execute(f"CREATE TEMP TABLE moved (LIKE {table}) ON COMMIT DROP")
        conn.execute(f"WITH m AS (DELETE FROM {table}_default WHERE {column} >= %s AND "
                     f"{column} < %s RETURNING *) INSERT INTO moved SELECT * FROM m",
                     (month.start, month.end))
        conn.execute(f"CREATE TABLE {name} PARTITION OF {table} "
                     f"FOR VALUES FROM ({month.start!r}) TO ({month.end!r})")
        conn.execute(f"INSERT INTO {table} SELECT * FROM moved")
        conn.execute("DROP TABLE moved")
