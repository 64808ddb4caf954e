"""The optional abilities of a state store, each a small protocol the core checks with
`isinstance` where it uses one (never a `getattr` probe), and the error naming a store that
lacks an ability a feature cannot work without.

A store offers an ability by having its methods; it declares nothing else. The builtin
stores: `memory` and `sqlite` lead (`lead`, within one machine) and `sqlite` backs up;
`postgres` has them all.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .audit import AuditEntry
from .errors import ConfigError
from .loglines import LogLine, LogPage, LogSearch
from .protocols import StateStore
from .records import AttemptRecord, Retired
from .retention import Pruned, Tombstone


@runtime_checkable
class Backups(Protocol):
    """`baseshift backup` / `baseshift restore`: the store's whole content to and from one
    file; each returns the number of runs in it."""

    async def backup(self, target: Path) -> int: ...

    async def restore(self, source: Path) -> int: ...


@runtime_checkable
class Retention(Protocol):
    """`baseshift retention`: retire the runs created before `cutoff` (epoch seconds), first
    archived as JSON Lines into `archive` when given; `dry_run` only reports."""

    async def retire(self, cutoff: float, archive: Path | None,
                     dry_run: bool = False) -> Sequence[Retired]: ...


@runtime_checkable
class RetentionPolicies(Protocol):
    """The retention policies applied (core/retention.py): `cutoffs` holds, per kind of data
    the store keeps (`runs`, `attempt_logs`, `job_results`, `audit_entries`,
    `template_versions`, `log_lines`), the time (epoch seconds) before which it is removed; a kind
    missing is kept. Unfinished runs and runs on legal hold are never touched. Returns the
    counts per kind; `dry_run` removes nothing and counts what would go. Removing audit
    entries leaves an anchor so the rest still verifies, and appends `audit.prune`."""

    async def apply_retention(self, cutoffs: Mapping[str, float],
                              dry_run: bool = False) -> Pruned: ...


@runtime_checkable
class LogLines(Protocol):
    """A log store (docs/operations.md "Logs"): `append_log_lines` keeps a batch of lines,
    each given the next id (the order they were stored in); `search_log_lines` answers a
    `LogSearch` exactly as `core.loglines.select_lines` would. A store with this ability
    also removes lines by the `log_lines` retention policy (held runs' lines stay) and with
    the run they belong to (retention of runs, erasure)."""

    async def append_log_lines(self, lines: Sequence[LogLine]) -> None: ...

    async def search_log_lines(self, search: LogSearch) -> LogPage: ...


@runtime_checkable
class AttemptReads(Protocol):
    """Some attempts of one run, by (job key, number), without the rest of the run: the log
    store reads the attempts that just ended this way (read whole, a large fan-out's run
    would be read again for every batch of them). Keys not stored are left out; the
    attempts come ordered by job key, then number, as `load_run` orders them."""

    async def load_attempts(self, run_id: str,
                            keys: Sequence[tuple[str, int]]) -> list[AttemptRecord]: ...


@runtime_checkable
class LegalHolds(Protocol):
    """Runs put on legal hold: retention and erasure leave them and all of theirs alone.
    `set_legal_hold` raises NotFound for an unknown run and appends `audit` with the
    change."""

    async def set_legal_hold(self, run_id: str, hold: bool,
                             audit: Sequence[AuditEntry] = ()) -> None: ...

    async def legal_holds(self) -> list[str]:
        """The ids of the runs on hold."""
        ...


@runtime_checkable
class Erasure(Protocol):
    """A data subject's erasure: `erase_run` removes a finished run's inputs, jobs (their
    inputs, outputs and errors) and attempts (their logs), leaving `tombstone`, and appends
    `audit`, in one transaction; Conflict for an unfinished or held run, NotFound for an
    unknown one. `tombstone` answers what is left of an erased run (None otherwise)."""

    async def erase_run(self, tombstone: Tombstone,
                        audit: Sequence[AuditEntry] = ()) -> None: ...

    async def tombstone(self, run_id: str) -> Tombstone | None: ...


@runtime_checkable
class Leadership(Protocol):
    """Whether this process leads `role` among the processes sharing the store (the cron
    scheduler asks for "cron"). Without it, every process leads: a store one process uses."""

    async def lead(self, role: str) -> bool: ...


@runtime_checkable
class SharedLocks(Protocol):
    """A lock named `name` held against every process sharing the store, as an async context
    manager (admission holds one per workflow while it counts runs and starts one). Without
    it, a lock within this process is enough: no other process shares the store."""

    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]: ...


@runtime_checkable
class SharedDocuments(Protocol):
    """Small JSON documents every process sharing the store reads and writes (the cron
    leader's schedule marks); `load_document` is None for a document never saved. Without
    them, such documents stay in files under `data_dir`."""

    async def load_document(self, name: str) -> Any: ...

    async def save_document(self, name: str, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class DataKeyRecord:
    """A data key (plugins/keys/): `wrapped` is the key encrypted by the key-encryption key
    `kek_id` of a key provider (text the provider chose); `purpose` is what it seals
    ("store": stored secret values; "api": the key API's keys)."""

    id: str
    purpose: str
    kek_id: str
    wrapped: str
    created_at: float


@runtime_checkable
class DataKeys(Protocol):
    """Wrapped data keys, and one small JSON document of the key plugin's state (the
    rotation under way or the last one finished); `key_state` is None before any save.
    `rewrap_data_key` replaces the wrapping only while the key is still under `old_kek`
    (compare-and-set) and says whether it did."""

    async def save_data_key(self, key: DataKeyRecord) -> None: ...

    async def load_data_key(self, key_id: str) -> DataKeyRecord | None: ...

    async def data_keys_not_under(self, kek_id: str, limit: int) -> list[DataKeyRecord]: ...

    async def rewrap_data_key(self, key_id: str, old_kek: str, new_kek: str,
                              wrapped: str) -> bool: ...

    async def data_key_counts(self) -> dict[str, int]: ...

    async def key_state(self) -> Mapping[str, object] | None: ...

    async def save_key_state(self, state: Mapping[str, object]) -> None: ...


def missing_ability(store: StateStore, does: str, needed_by: str, hint: str) -> ConfigError:
    """The error for a store that cannot do what a configured feature needs, naming both."""
    return ConfigError(f"store {store.name!r} cannot {does}, which {needed_by} needs",
                       hint=hint)


@runtime_checkable
class DatabaseAdmin(Protocol):
    """What `/api/v1/database/*` shows of the database under the store (JSON-ready maps).

    `database_performance`: `backend`, then what that database can tell (pool, table sizes,
    cache hits, connections, transactions; for SQLite the file, pages, WAL and journal
    mode). `slow_queries`: the `limit` slowest statements, or `available: false` and a
    `reason` saying how to enable their collection. `explain_query`: the plan of one
    read-only statement (`plan`, `suggestions`, `estimated_cost`), never executed except
    with `analyze`, and then in a read-only transaction rolled back; QueryRefused (422)
    for anything else."""

    async def database_performance(self) -> Mapping[str, object]: ...

    async def slow_queries(self, limit: int) -> Mapping[str, object]: ...

    async def explain_query(self, query: str, analyze: bool = False) -> Mapping[str, object]: ...
