"""Data retention: how long each kind of data is kept (`[plugins.retention]` in
`baseshift.toml`), what applying those policies removed, legal holds and erasure tombstones.

The policies are days per kind; a kind without one is kept forever:

    [plugins.retention]
    runs = 365             # finished runs with their jobs and attempts
    attempt_logs = 30      # the log text of attempts (the attempts stay)
    job_results = 90       # job outputs and errors of finished runs (the jobs stay)
    audit_entries = 2555   # the oldest audit entries (the chain stays verifiable)
    template_versions = 180  # never a template's newest version, nor one a live run uses
    log_lines = 14         # lines of the log store (docs/operations.md "Logs")

Audit entries must outlive the data they describe, so `audit_entries` may not be shorter than
any other policy. Unfinished runs and runs on legal hold are never touched (nor, by
`log_lines`, the log lines of a held run).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ConfigError
from .stash import StashKey

RUNS = "runs"
ATTEMPT_LOGS = "attempt_logs"
JOB_RESULTS = "job_results"
AUDIT_ENTRIES = "audit_entries"
TEMPLATE_VERSIONS = "template_versions"
LOG_LINES = "log_lines"
KINDS = (RUNS, ATTEMPT_LOGS, JOB_RESULTS, AUDIT_ENTRIES, TEMPLATE_VERSIONS, LOG_LINES)
"""Every kind of data a policy may name, in the order they are applied."""
RUN_KINDS = (RUNS, ATTEMPT_LOGS, JOB_RESULTS)
"""The kinds that belong to a run (legal hold keeps them)."""

OPTIONS = "retention"
"""The policies' table in `settings.extra` (`[plugins.retention]`)."""
NOT_POLICIES = frozenset({"clock", "interval"})
"""Keys of the table that are options of the daily task, not policies."""
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days to keep per kind (only the kinds that have a policy)."""

    days: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> RetentionPolicy:
        """The policies of a `[plugins.retention]` table; ConfigError naming a bad key."""
        days: dict[str, float] = {}
        for key, value in (options or {}).items():
            if key in NOT_POLICIES:
                continue
            if key not in KINDS:
                raise ConfigError(f"Config 'plugins.retention.{key}' is not a kind of data",
                                  hint=f"the kinds are {', '.join(KINDS)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"Config 'plugins.retention.{key}' has value {value!r}. "
                                  "Expected a positive number of days.",
                                  hint="leave a kind out to keep it forever")
            days[key] = float(value)
        audit = days.get(AUDIT_ENTRIES)
        if audit is not None:
            longer = [k for k, d in days.items() if k != AUDIT_ENTRIES and d > audit]
            if longer:
                raise ConfigError(
                    f"Config 'plugins.retention.audit_entries' ({audit:g} days) is shorter "
                    f"than the policy of {', '.join(longer)}: audit entries must outlive the "
                    "data they describe",
                    hint=f"keep audit entries at least {max(days[k] for k in longer):g} days, "
                    "or remove the audit_entries policy")
        return cls(days)

    def cutoffs(self, now: float) -> dict[str, float]:
        """Per kind with a policy, the time (epoch seconds) before which its data goes."""
        return {kind: now - d * DAY for kind, d in self.days.items()}

    def to_json(self) -> dict[str, float]:
        return {kind: self.days[kind] for kind in KINDS if kind in self.days}


@dataclass(frozen=True, slots=True)
class Pruned:
    """What applying the policies removed (or would: a dry run) per kind, and how many runs
    the policies would have touched but legal hold kept."""

    removed: Mapping[str, int] = field(default_factory=dict)
    held: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        kinds = {*self.removed, *other.removed}
        return Pruned({k: self.removed.get(k, 0) + other.removed.get(k, 0) for k in kinds},
                      self.held + other.held)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What is left of an erased run: its id, workflow, when and by whom it was erased."""

    run_id: str
    workflow: str
    erased_at: float
    erased_by: str

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "workflow": self.workflow,
                "erased_at": self.erased_at, "erased_by": self.erased_by}


class ResultCopies(Protocol):
    """Copies of job results a plugin keeps outside the state store (MongoDB's
    `job_results`), which must go with the runs and results they copy: the plugin puts it in
    `baseshift.stash[RESULT_COPIES]` while the application runs."""

    async def prune(self, before: float, keep: Iterable[str], dry_run: bool = False) -> int:
        """Delete the copies of jobs that ended before `before`, except those of the runs
        in `keep`; returns how many (would) go."""
        ...

    async def erase_run(self, run_id: str) -> int:
        """Delete every copy of run `run_id`'s results; returns how many."""
        ...


RESULT_COPIES: StashKey[ResultCopies] = StashKey("result_copies")
"""Where a results plugin leaves its `ResultCopies` for retention and erasure."""
