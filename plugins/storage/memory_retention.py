"""Retention, legal hold and erasure for the memory state store (core/capabilities.py
`RetentionPolicies`, `LegalHolds`, `Erasure`): the same rules as the SQL stores keep."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from baseshift.core.audit import AuditEntry
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.records import AttemptRecord, JobRecord, RunRecord
from baseshift.core.retention import (
    ATTEMPT_LOGS,
    AUDIT_ENTRIES,
    JOB_RESULTS,
    LOG_LINES,
    RUN_KINDS,
    RUNS,
    Pruned,
    Tombstone,
)
from baseshift.core.storecalls import StoreCalls, observed

from .memory_audit import MemoryAudit
from .memory_loglines import MemoryLogLines


def run_end(run: RunRecord) -> float:
    """When a finished run ended (its creation when no end was recorded)."""
    return run.ended_at if run.ended_at is not None else run.created_at


class MemoryRetention(MemoryAudit, MemoryLogLines):
    """The retention abilities of the memory store, on its dictionaries."""

    calls: StoreCalls

    _runs: dict[str, RunRecord]
    _jobs: dict[str, dict[str, JobRecord]]
    _attempts: dict[str, dict[tuple[str, int], AttemptRecord]]
    _holds: set[str]
    _tombstones: dict[str, Tombstone]

    @observed("apply_retention")
    async def apply_retention(self, cutoffs: Mapping[str, float],
                              dry_run: bool = False) -> Pruned:
        removed = {kind: 0 for kind in cutoffs}
        finished = [r for r in self._runs.values() if r.state.finished]
        run_cutoffs = [cutoffs[k] for k in RUN_KINDS if k in cutoffs]
        held = sum(1 for r in finished if r.id in self._holds and run_cutoffs
                   and run_end(r) < max(run_cutoffs))
        kept = [r for r in finished if r.id not in self._holds]
        if RUNS in cutoffs:
            old = [r for r in kept if run_end(r) < cutoffs[RUNS]]
            removed[RUNS] = len(old)
            if not dry_run:
                for run in old:
                    self._drop(run.id)
            kept = [r for r in kept if run_end(r) >= cutoffs[RUNS]]
        if ATTEMPT_LOGS in cutoffs:
            for run in kept:
                for key, a in self._attempts[run.id].items():
                    end = a.ended_at if a.ended_at is not None else a.started_at
                    if a.log and end < cutoffs[ATTEMPT_LOGS]:
                        removed[ATTEMPT_LOGS] += 1
                        if not dry_run:
                            self._attempts[run.id][key].log = ""
        if JOB_RESULTS in cutoffs:
            for run in kept:
                for job in self._jobs[run.id].values():
                    end = job.ended_at if job.ended_at is not None else run_end(run)
                    if (job.output is not None or job.error is not None) \
                            and end < cutoffs[JOB_RESULTS]:
                        removed[JOB_RESULTS] += 1
                        if not dry_run:
                            job.output = job.error = None
        if LOG_LINES in cutoffs:
            removed[LOG_LINES] = self._prune_log_lines(cutoffs[LOG_LINES], self._holds, dry_run)
        if AUDIT_ENTRIES in cutoffs:
            removed[AUDIT_ENTRIES] = await self.prune_audit(cutoffs[AUDIT_ENTRIES], dry_run)
        return Pruned(removed, held)

    def _drop(self, run_id: str) -> None:
        del self._runs[run_id]
        self._jobs.pop(run_id, None)
        self._attempts.pop(run_id, None)
        self._holds.discard(run_id)
        self._drop_log_lines(run_id)

    @observed("set_legal_hold")
    async def set_legal_hold(self, run_id: str, hold: bool,
                             audit: Sequence[AuditEntry] = ()) -> None:
        if run_id not in self._runs:
            raise NotFound(f"run '{run_id}' not found")
        if hold:
            self._holds.add(run_id)
        else:
            self._holds.discard(run_id)
        self._write_audit(audit)

    @observed("legal_holds")
    async def legal_holds(self) -> list[str]:
        return sorted(self._holds)

    @observed("erase_run")
    async def erase_run(self, tombstone: Tombstone,
                        audit: Sequence[AuditEntry] = ()) -> None:
        run = self._runs.get(tombstone.run_id)
        if run is None:
            raise NotFound(f"run '{tombstone.run_id}' not found")
        if not run.state.finished:
            raise Conflict(f"run '{run.id}' is {run.state.value}: only a finished run can "
                           "be erased", hint="cancel it first")
        if run.id in self._holds:
            raise Conflict(f"run '{run.id}' is on legal hold and cannot be erased",
                           hint="take it off legal hold first")
        self._drop(run.id)
        self._tombstones[run.id] = tombstone
        self._write_audit(audit)

    @observed("tombstone")
    async def tombstone(self, run_id: str) -> Tombstone | None:
        return self._tombstones.get(run_id)
