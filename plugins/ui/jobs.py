"""The jobs of a run as the run page lists them: one panel per job, a fan-out's items grouped
under their job with counts by state (a 40-item fan-out is one line until it is opened)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from baseshift.core.states import JobState

if TYPE_CHECKING:
    from baseshift.core.plan import JobSpec, Plan
    from baseshift.core.records import AttemptRecord, JobRecord, RunSnapshot


def dom_id(key: str) -> str:
    """A job key as an HTML id fragment: `square[3]` -> `square-3-`."""
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in key)


def job_anchor(key: str) -> str:
    """The id of a job's panel on the run page (what its graph node links to)."""
    return f"job-{dom_id(key)}"


@dataclass(slots=True)
class JobRow:
    """One job (or fan-out item) as the run page lists it."""

    record: JobRecord
    attempts: list[AttemptRecord]
    uses: str
    waiting: bool = False
    prompt: str = ""
    can_rerun: bool = False

    @property
    def dom_id(self) -> str:
        return dom_id(self.record.key)

    @property
    def failed(self) -> bool:
        """Whether the job's `error` is a failure; a skipped or cancelled job's is a reason."""
        return self.record.state is JobState.FAILED


@dataclass(slots=True)
class JobGroup:
    """A job and, for a fan-out, its items (in index order) with how many are in each state."""

    row: JobRow
    items: list[JobRow] = field(default_factory=list)

    @property
    def counts(self) -> list[tuple[JobState, int]]:
        """Item counts by state, in the states' declared order, zero counts left out."""
        counted = Counter(item.record.state for item in self.items)
        return [(state, counted[state]) for state in JobState if counted[state]]

    @property
    def needs_attention(self) -> bool:
        """An item waits for a person: the group is shown open so its form is in view."""
        return any(item.waiting for item in self.items)


def job_groups(snapshot: RunSnapshot, plan: Plan | None) -> list[JobGroup]:
    """Every job of the run in plan order, each fan-out item under its job."""
    specs = {j.name: j for j in (*plan.jobs, *plan.handlers)} if plan else {}
    order = {name: i for i, name in enumerate(specs)}
    records = sorted(snapshot.jobs.values(),
                     key=lambda r: (order.get(r.name, len(order)), r.name,
                                    -1 if r.index is None else r.index))
    groups: dict[str, JobGroup] = {}
    for record in records:
        row = _row(snapshot, record, specs.get(record.name))
        group = groups.get(record.name)
        if group is None:
            groups[record.name] = JobGroup(row)
        else:
            group.items.append(row)
    return list(groups.values())


def _row(snapshot: RunSnapshot, record: JobRecord, spec: JobSpec | None) -> JobRow:
    uses = (spec.template.ref if spec.template else spec.uses) if spec else ""
    waiting = uses == "manual" and record.state is JobState.RUNNING
    prompt = (record.inputs or {}).get("prompt") if waiting else None
    return JobRow(record, snapshot.attempts_of(record.key), f"uses {uses}" if uses else "",
                  waiting=waiting, prompt=str(prompt or ""),
                  can_rerun=snapshot.run.state.finished and spec is not None
                  and record.index is None and not record.handler)
