"""What each rule kind measures: the subjects whose condition holds now, with the value
measured (a failure ratio, seconds, a count), and a line saying so for the notices.

`queue_lag` and `no_worker` read the attempt queue through small protocols (the PostgreSQL
queue has both); without a queue, `queue_lag` reads this server's own scheduler: the jobs
it made ready that have not started (`ReadyJobs`, fed by `track_event`)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from baseshift.core.capabilities import missing_ability
from baseshift.core.protocols import RunAnalytics, StateStore
from baseshift.core.readyjobs import ReadyJobs
from baseshift.core.records import RunQuery
from baseshift.core.states import RunState

from .rules import Rule

MAX_SUBJECTS = 1000
"""At most this many alerts per rule (the oldest runs first for `run_duration`)."""
UNFINISHED = tuple(s for s in RunState if not s.finished)

Found = dict[str, float | None]


@runtime_checkable
class ReportsWaiting(Protocol):
    """A queue that tells how many attempts wait to be claimed and how long (seconds) the
    oldest has waited (None: none waits)."""

    async def waiting(self) -> tuple[int, float | None]: ...


@runtime_checkable
class ReportsWorkers(Protocol):
    """A queue whose workers show life: seconds since the last sign of any (None: none
    ever seen)."""

    async def last_worker_seen(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Sources:
    """What the conditions read."""

    store: StateStore
    queue: object | None
    ready: ReadyJobs


async def failure_rate(rule: Rule, src: Sources, now: float) -> Found:
    """Per workflow (the one named, or each): failed among completed and failed runs
    created in the last `window` seconds, when at least `min_runs` of them count."""
    store = src.store
    if not isinstance(store, RunAnalytics):
        raise missing_ability(store, "answer analytics queries (RunAnalytics)",
                              "the failure_rate alert rule", "choose another store")
    p = rule.params
    named = [p["workflow"]] if p.get("workflow") else None
    found: Found = {}
    for row in await store.workflow_runs(now - p["window"], now + 1, named):
        decided = row.completed + row.failed
        if decided >= p["min_runs"] and row.failed / decided >= p["threshold"]:
            found[row.workflow] = row.failed / decided
    return found


async def run_duration(rule: Rule, src: Sources, now: float) -> Found:
    """Each unfinished run (of the workflow named, or of any) running for more than
    `expected` seconds, with its age."""
    expected = rule.params["expected"]
    found: Found = {}
    cursor: str | None = None
    while len(found) < MAX_SUBJECTS:
        page = await src.store.query_runs(RunQuery(
            workflow=rule.params.get("workflow"), states=UNFINISHED,
            created_before=now - expected, limit=500, cursor=cursor))
        for run in page.runs:
            age = now - (run.started_at or run.created_at)
            if age > expected and len(found) < MAX_SUBJECTS:
                found[run.id] = age
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found


async def queue_lag(rule: Rule, src: Sources, now: float) -> Found:
    """`wait`: the oldest attempt ready but not started waited more than `max_wait`
    seconds; `depth`: more than `max_depth` wait."""
    if isinstance(src.queue, ReportsWaiting):
        depth, wait = await src.queue.waiting()
    else:
        depth, wait = src.ready.waiting(now)
    found: Found = {}
    if "max_wait" in rule.params and wait is not None and wait > rule.params["max_wait"]:
        found["wait"] = wait
    if "max_depth" in rule.params and depth > rule.params["max_depth"]:
        found["depth"] = float(depth)
    return found


async def no_worker(rule: Rule, src: Sources, now: float) -> Found:
    """`workers`: no worker has shown life for `seconds` (value: seconds since the last
    one did; None when none ever did)."""
    if not isinstance(src.queue, ReportsWorkers):
        return {}
    seen = await src.queue.last_worker_seen()
    return {"workers": seen} if seen is None or seen > rule.params["seconds"] else {}


MEASURE: dict[str, Callable[[Rule, Sources, float], Awaitable[Found]]] = {
    "failure_rate": failure_rate, "run_duration": run_duration, "queue_lag": queue_lag,
    "no_worker": no_worker}


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}s"


def summary(rule: Rule, subject: str, value: float | None) -> str:
    """One line about the alert (names come from validated rules and stored runs; a
    notifier still escapes them for its medium)."""
    p = rule.params
    match rule.kind:
        case "failure_rate":
            return (f"workflow {subject}: {value or 0:.0%} of its runs failed in the last "
                    f"{p['window']:g}s (threshold {p['threshold']:.0%})")
        case "run_duration":
            return (f"run {subject} is unfinished after {_seconds(value)} (expected "
                    f"{p['expected']:g}s)")
        case "queue_lag" if subject == "depth":
            return f"{value or 0:.0f} jobs wait to start (more than {p['max_depth']})"
        case "queue_lag":
            return (f"the oldest ready job has waited {_seconds(value)} to start (more than "
                    f"{p['max_wait']:g}s)")
        case _:
            return (f"no worker has shown life for {p['seconds']:g}s (last seen: "
                    f"{_seconds(value)}{'' if value is None else ' ago'})")
