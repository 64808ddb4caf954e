"""The metrics of one application, in a registry of its own (never prometheus_client's
global one, so two applications in one process do not mix their counts).

Labels are bounded: an endpoint is the matched route's template (`unmatched` otherwise), a
workflow a name from the loaded catalog, capped at `max_workflows` distinct values (then
`other`). Run ids, job instance keys and user input never become a label.
"""
from __future__ import annotations

import collections
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from baseshift.core.config import option
from baseshift.core.diagnostics import Severity
from baseshift.core.events import Event, JobStateChanged, RunStateChanged
from baseshift.core.readyjobs import ReadyJobs, ready_jobs_of
from baseshift.core.stash import StashKey
from baseshift.core.states import JobState, RunState

from .fleet import READY_SINCE, fleet_dir, fleet_registry, lag_family
from .local import (
    Counting,
    Family,
    Gauging,
    LocalCounter,
    LocalGauge,
    LocalHistogram,
    Observing,
    observe_each,
)
from .mirror import RegistryMirror

if TYPE_CHECKING:
    from baseshift.core.appface import App

K = TypeVar("K")
V = TypeVar("V")
C = TypeVar("C")

OTHER = "other"
"""The workflow label once `max_workflows` distinct names have been seen."""
UNKNOWN = "unknown"
"""The workflow label of a job whose run this process has not seen start."""
MAX_WORKFLOWS = 500
TRACKED = 100_000
"""At most this many runs, or jobs of a run, are followed for durations and waits at once
(the oldest are forgotten first): a lost event never makes the process grow for ever."""
TRACKED_RUNS = 10_000
"""At most this many runs' running jobs are followed at once (the oldest run's forgotten
first beyond this; a run none of whose jobs runs is not followed)."""

OPTIONS = "metrics"
"""`[plugins.metrics]`."""
METRICS: StashKey[Metrics] = StashKey("metrics")


def metrics_of(bs: App) -> Metrics:
    """The application's metrics (made on first use)."""
    found = bs.stash.get(METRICS)
    if found is None:
        found = bs.stash[METRICS] = Metrics(
            bs, max_workflows=option(bs.settings, OPTIONS, "max_workflows", MAX_WORKFLOWS),
            fleet=fleet_dir())
    return found


QUEUE_STATES = ("queued", "leased", "done")
LEASE_EXPIRIES = "baseshift_queue_lease_expiries"
LEASE_EXPIRIES_HELP = "Attempts of this server whose worker stopped renewing its lease"
RELOAD_REASONS = ("failed", "broken")
"""The `reason` label of `baseshift_reload_errors_total` (core/app/catalog.py's outcomes)."""


@runtime_checkable
class QueueGauges(Protocol):
    """A queue that reports its depth and lease expiries (the PostgreSQL queue)."""

    lease_expiries: int

    async def depth(self) -> dict[str, int]: ...


REQUEST_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
RUN_BUCKETS = (.1, .5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 12 * 3600)
STORE_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10)


class Metrics:
    """Counters, histograms and gauges of one application, fed by the HTTP middleware,
    `track_event` and `job_wrapper`; scrape-time values come from `_Ready` and `_Live`.

    With `fleet` (a directory shared by the processes of `serve --processes N`, fleet.py),
    every value is written there too and a scrape answers the sum of every process's."""

    def __init__(self, bs: App | None = None, *, max_workflows: int = MAX_WORKFLOWS,
                 fleet: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        """What a scrape of one process answers; in a fleet, what other plugins register
        here (their scrape-time collectors) and nothing else, which `mirror` copies into
        the shared files."""
        self.max_workflows = max_workflows
        self.fleet = fleet
        self._workflows: set[str] = set()
        # in a fleet, these metrics are summed from the shared files, never read from here
        r = self.registry if fleet is None else CollectorRegistry()
        if fleet is None:  # one process's own figures: meaningless summed over a fleet
            ProcessCollector(registry=r)  # process_cpu_seconds_total, _resident_memory_bytes
        # one process: plain numbers read at scrape time (local.py); a fleet:
        # prometheus_client's own objects, which write every change to the shared files
        counter, gauge, histogram = (LocalCounter, LocalGauge, LocalHistogram) \
            if fleet is None else (Counter, Gauge, Histogram)
        self.requests: Family[Counting] = counter(
            "http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"],
            registry=r)
        self.request_seconds: Family[Observing] = histogram(
            "request_duration_seconds", "Time to answer an HTTP request", ["endpoint"],
            buckets=REQUEST_BUCKETS, registry=r)
        self.login_failures: Counting = counter(
            "baseshift_login_failures_total",
            "Refused sign-ins (wrong password or code, throttled)", registry=r)
        self.runs: Family[Counting] = counter(
            "baseshift_runs_total", "Runs that reached a state", ["workflow", "status"],
            registry=r)
        self.jobs: Family[Counting] = counter(
            "baseshift_jobs_total", "Jobs that reached a state", ["workflow", "state"],
            registry=r)
        self.run_seconds: Family[Observing] = histogram(
            "baseshift_run_duration_seconds", "Runs from RUNNING to finished", ["workflow"],
            buckets=RUN_BUCKETS, registry=r)
        self.job_seconds: Family[Observing] = histogram(
            "baseshift_job_duration_seconds", "Jobs from RUNNING to finished", ["workflow"],
            buckets=RUN_BUCKETS, registry=r)
        self.attempts: Family[Counting] = counter(
            "baseshift_attempts_total", "Job attempts this process executed, by outcome",
            ["workflow", "outcome"], registry=r)
        self.attempt_seconds: Family[Observing] = histogram(
            "baseshift_attempt_duration_seconds", "Job attempts this process executed",
            ["workflow"], buckets=RUN_BUCKETS, registry=r)
        self.store_seconds: Family[Observing] = histogram(
            "baseshift_store_transaction_seconds",
            "State store operations (each one transaction) this process made",
            ["store", "operation"], buckets=STORE_BUCKETS, registry=r)
        self.in_flight: Gauging = gauge(
            "baseshift_attempts_in_flight", "Job attempts executing in this process now",
            registry=r, multiprocess_mode="livesum")
        self.running: Gauging = self.in_flight.labels() \
            if isinstance(self.in_flight, LocalGauge) else self.in_flight
        """`in_flight`'s one series (the gauge itself in a fleet), changed at every attempt."""
        self.reload_errors: Family[Counting] = counter(
            "baseshift_reload_errors_total",
            "Workflow folder (re)loads that raised (reason=failed) or left a file that does "
            "not check (reason=broken)", ["reason"], registry=r)
        for reason in RELOAD_REASONS:
            self.reload_errors.labels(reason)  # both series exist from the start, at 0
        self._children: dict[tuple[Family[Any], tuple[str, ...]], Any] = {}
        self.attempt_series_kept: dict[str, AttemptSeries] = {}
        """`attempt_series` by workflow name (and label), as it keeps them."""
        self.attempts_here = False
        """Whether this process runs the attempts whose jobs' events it counts (it has no
        attempt queue): then the attempts are counted and timed from those events, from
        the job's RUNNING to the attempt's end, and in flight between the two; no wrapper
        need be entered around each (plugin.py). A worker (a queue's) counts them in its
        wrapper; a server with a queue counts none (its workers do)."""
        self._job_counts: dict[tuple[str, JobState], Counting] = {}
        """`jobs` series by (workflow label, state): `child` without its key's making."""
        self._run_workflow: dict[str, str] = {}
        self._run_started: dict[str, float] = {}
        self._job_started: dict[str, dict[str, float]] = {}
        """When each running job started, by run id and job name (`_time_jobs`)."""
        self.ready = ReadyJobs() if bs is None else ready_jobs_of(bs.stash)
        """Jobs ready but not started (the application's, shared with the Insights)."""
        self.queue: QueueGauges | None = None
        self.queue_depth: dict[str, int] | None = None
        """Read from the queue by `refresh` before each scrape (None: no such queue)."""
        self._expiries: tuple[Counter, int] | None = None
        """In a fleet: the shared lease-expiry counter and the count it has been told."""
        self.mirror: RegistryMirror | None = None
        """In a fleet: what other plugins register on `registry`, copied into the shared
        files (mirror.py); started by the plugin, and copied before each scrape."""
        self.live = _Live(bs, self) if bs is not None else None
        if fleet is None:
            r.register(_Ready(self))
            if self.live is not None:
                r.register(self.live)
            return
        # written at each change, since another process may answer the scrape
        self.fleet_ready = Gauge("baseshift_jobs_ready", _READY_HELP,
                                 multiprocess_mode="livesum", registry=None)
        self.fleet_since = Gauge(READY_SINCE, "When this process's oldest ready job became "
                                 "ready", multiprocess_mode="livemin", registry=None)
        self.fleet_since.set(math.inf)
        self.mirror = RegistryMirror(self.registry)
        local = (() if self.live is None else (self.live,))
        self._fleet = fleet_registry(fleet, *local)

    def exposition(self) -> CollectorRegistry:
        """What a scrape answers: this process's registry, or the fleet's sums."""
        return self.registry if self.fleet is None else self._fleet

    # ------------------------------------------------------------ labels

    def workflow(self, name: str) -> str:
        """`name` as a label value: itself among the first `max_workflows` names seen."""
        if name in self._workflows:
            return name
        if len(self._workflows) >= self.max_workflows:
            return OTHER
        self._workflows.add(name)
        return name

    def reloaded_badly(self, reason: str) -> None:
        """A catalog reload listener: count a reload that failed or left broken files."""
        self.reload_errors.labels(reason if reason in RELOAD_REASONS else OTHER).inc()

    def watch_queue(self, queue: QueueGauges) -> None:
        """Report `queue`'s depth and lease expiries (in a fleet, the expiries go to the
        shared files as they happen: the process that answers a scrape cannot read them)."""
        if self.queue is queue:
            return
        self.queue = queue
        if self.fleet is not None:
            self._expiries = (Counter(LEASE_EXPIRIES, LEASE_EXPIRIES_HELP, registry=None), 0)

    def _tell_expiries(self) -> None:
        if self._expiries is not None and self.queue is not None:
            counter, told = self._expiries
            now = self.queue.lease_expiries
            if now > told:
                counter.inc(now - told)
                self._expiries = (counter, now)

    def child(self, metric: Family[C], *labels: str) -> C:
        """`metric.labels(*labels)`, kept: prometheus_client checks the values and takes a
        lock on each `labels()` call, and this is called for every event. Label values are
        bounded, so is this table."""
        key = (metric, labels)
        found: C | None = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def attempt_series(self, workflow: str) -> AttemptSeries:
        """The attempt series of workflow `workflow`, kept by name (asked for at every
        attempt), for the first `max_workflows` names; later names are looked up by label
        (`other`) each time, so the table stays bounded."""
        found = self.attempt_series_kept.get(workflow)
        if found is not None:
            return found
        label = self.workflow(workflow)
        found = self.attempt_series_kept.get(label)
        if found is None:
            ok, error, cancelled = (self.attempts.labels(label, outcome)
                                    for outcome in ATTEMPT_OUTCOMES)
            found = self.attempt_series_kept[label] = AttemptSeries(
                ok, error, cancelled, self.attempt_seconds.labels(label), self.running)
        return found

    def store_call(self, store: str, operation: str) -> _Timed:
        """Time one store operation (a `core/storecalls.py` listener)."""
        return _Timed(self.child(self.store_seconds, store, operation))

    async def refresh(self) -> None:
        """Read what only an await can (the queue's depth) before a scrape."""
        if self.queue is not None:
            self.queue_depth = await self.queue.depth()
            self._tell_expiries()
        if self.mirror is not None:
            self.mirror.copy()

    # ------------------------------------------------------------ events

    def observe(self, event: Event) -> None:
        """Count one event (`observe_all`)."""
        self.observe_all((event,))

    def observe_all(self, events: Sequence[Event]) -> None:
        """Count a batch of events (a `track_events` batch: every event of an engine round,
        thousands in a large fan-out). Jobs' events are counted with builtins, not a call
        each: their counts by (run, state) first, then a series update per distinct pair."""
        self.ready.observe_all(events)
        jobs = [e for e in events if type(e) is JobStateChanged]
        # most batches hold jobs' events only: then no second pass looks for runs' events
        runs = [e for e in events if type(e) is RunStateChanged] \
            if len(jobs) < len(events) else []
        workflows = self._run_workflow
        for run in runs:  # a run's workflow is known before its jobs' events are counted
            if not run.new.finished:
                _keep(workflows, run.run_id, self.workflow(run.workflow))
        if jobs:
            self._jobs(jobs)
        for run in runs:
            self._run(run)
        if self.fleet is not None:
            self._tell_expiries()
            self.fleet_ready.set(len(self.ready))
            oldest = self.ready.oldest()
            self.fleet_since.set(math.inf if oldest is None else oldest)

    def _run(self, e: RunStateChanged) -> None:
        workflow = self.workflow(e.workflow)
        self.child(self.runs, workflow, str(e.new)).inc()  # its value: a StrEnum
        if e.new is RunState.RUNNING:
            _keep(self._run_started, e.run_id, e.at)
        elif e.new.finished:
            self._run_workflow.pop(e.run_id, None)
            started = self._run_started.pop(e.run_id, None)
            if started is not None:
                self.child(self.run_seconds, workflow).observe(max(0.0, e.at - started))

    def _jobs(self, jobs: list[JobStateChanged]) -> None:
        """Count jobs' state changes; time each job from its last RUNNING (its last
        attempt's start) to its end."""
        workflows, counts = self._run_workflow, self._job_counts
        runs = set(map(_RUN_ID, jobs))
        only = next(iter(runs)) if len(runs) == 1 else None  # the usual batch: one run's
        for (run_id, state), count in _counts(jobs, only):
            workflow = workflows.get(run_id, UNKNOWN)
            counted = counts.get((workflow, state))
            if counted is None:
                counted = counts[(workflow, state)] = self.jobs.labels(workflow, str(state))
            counted.inc(count)
        if only is not None:
            self._time_jobs(only, jobs)
            return
        for run_id, events in _by_run(jobs).items():
            self._time_jobs(run_id, events)

    def _time_jobs(self, run_id: str, events: list[JobStateChanged]) -> None:
        """From `events`, run `run_id`'s job events of a batch: note when the jobs that went
        RUNNING started; time those whose attempt ended (the job did, or is RETRYING)
        since, and each job that ended (a job not seen start is not timed; a clock set back
        times it at 0). Kept by run, then by job name: no (run, job) pair is made and hashed
        for each event. Where attempts run in this process (`attempts_here`), each ended one
        is also counted by outcome and timed, and the attempts in flight are the jobs
        started and not ended. The events are walked in their order when a job both ends
        and starts again among them (a retry)."""
        state = JobState.RUNNING
        running = [e for e in events if e.new is state]
        ended = [e for e in events if e.new in ATTEMPT_ENDS]
        table = self._job_started
        began = table.get(run_id)
        before = 0 if began is None else len(began)
        states: list[JobState] = []
        durations: list[float] = []
        if running:
            if began is None:
                began = table[run_id] = {}
                if len(table) > TRACKED_RUNS:
                    before += len(table.pop(next(iter(table))))  # those are forgotten too
            if ended and _restarts(running, ended):
                (states, durations), ended = _in_order(began, events), []
            else:
                began.update(zip(map(_JOB, running), map(_AT, running), strict=True))
            while len(began) > TRACKED:
                began.pop(next(iter(began)))
        if ended and began:
            pop = began.pop
            found = [pop(job, None) for job in map(_JOB, ended)]
            starts = [b for b in found if b is not None]
            if len(starts) < len(found):  # jobs not seen start: not timed
                ended = [e for e, b in zip(ended, found, strict=True) if b is not None]
            states = list(map(_NEW, ended))
            durations = [d if (d := e.at - b) > 0.0 else 0.0
                         for e, b in zip(ended, starts, strict=True)]
        after = 0 if began is None else len(began)
        if began is not None and not began:  # none of the run's jobs runs now
            del table[run_id]
        if self.attempts_here and after != before:
            self.running.inc(after - before)
        if not durations:
            return
        workflow = self._run_workflow.get(run_id, UNKNOWN)
        retrying = JobState.RETRYING
        jobs = durations if retrying not in states else \
            [d for state, d in zip(states, durations, strict=True) if state is not retrying]
        if jobs:
            observe_each(self.child(self.job_seconds, workflow), jobs)
        if self.attempts_here:
            series = self.attempt_series(workflow)
            outcomes = (series.ok, series.error, series.cancelled)
            for state, count in collections.Counter(states).items():
                outcomes[_OUTCOME[state]].inc(count)
            observe_each(series.seconds, durations)


def _restarts(running: list[JobStateChanged], ended: list[JobStateChanged]) -> bool:
    """Whether a job whose attempt ended in a batch also starts in it: then the batch is
    walked in order (`_in_order`). Only an attempt that did not succeed can be followed by
    another, so a batch whose ended attempts all succeeded (a fan-out's) is not looked
    into."""
    return list(map(_NEW, ended)).count(JobState.SUCCEEDED) < len(ended) and \
        not {*map(_JOB, running)}.isdisjoint(map(_JOB, ended))


def _in_order(began: dict[str, float], events: list[JobStateChanged]
              ) -> tuple[list[JobState], list[float]]:
    """`events` applied to the start times `began` one by one: how long each attempt that
    ended took, with the state it ended in (`_time_jobs`, when a job starts, ends and starts
    again in one batch)."""
    states: list[JobState] = []
    durations: list[float] = []
    running = JobState.RUNNING
    for e in events:
        if e.new is running:
            began[e.job] = e.at
        elif e.new in ATTEMPT_ENDS and (b := began.pop(e.job, None)) is not None:
            states.append(e.new)
            durations.append(max(e.at - b, 0.0))
    return states, durations


def _counts(jobs: list[JobStateChanged], only: str | None
            ) -> Iterable[tuple[tuple[str, JobState], int]]:
    """How many of `jobs`' events reached each state, by (run, state). When they are all of
    run `only` (a batch usually is), counted by state alone, making no pair for each."""
    if only is not None:
        return [((only, state), count)
                for state, count in collections.Counter(map(_NEW, jobs)).items()]
    return collections.Counter(map(_RUN_AND_STATE, jobs)).items()


def _by_run(jobs: list[JobStateChanged]) -> dict[str, list[JobStateChanged]]:
    """The job events of a batch of several runs, by run, each run's in order."""
    found: dict[str, list[JobStateChanged]] = {}
    for e in jobs:
        found.setdefault(e.run_id, []).append(e)
    return found


_RUN_AND_STATE = attrgetter("run_id", "new")
_JOB = attrgetter("job")
_RUN_ID = attrgetter("run_id")
_NEW = attrgetter("new")
_AT = attrgetter("at")


ATTEMPT_OUTCOMES = ("ok", "error", "cancelled")
"""The `outcome` label of `baseshift_attempts_total`."""
ATTEMPT_ENDS = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.RETRYING,
                          JobState.CANCELLED})
"""The states a running job's attempt ends in."""
_OUTCOME = {JobState.SUCCEEDED: 0, JobState.FAILED: 1, JobState.RETRYING: 1,
            JobState.CANCELLED: 2}
"""Where an attempt that ended in each state is counted: 0 ok, 1 error, 2 cancelled."""


class AttemptSeries(NamedTuple):
    """The series an attempt of one workflow counts and times itself in, and the gauge of
    attempts in flight."""

    ok: Counting
    error: Counting
    cancelled: Counting
    seconds: Observing
    running: Gauging


class _Timed:
    """Observes, into a histogram, how long its block took (failed or not)."""

    __slots__ = ("began", "histogram")

    def __init__(self, histogram: Observing) -> None:
        self.histogram = histogram
        self.began = 0.0

    def __enter__(self) -> None:
        self.began = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.histogram.observe(time.perf_counter() - self.began)


def _keep(table: dict[K, V], key: K, value: V) -> None:
    table[key] = value
    if len(table) > TRACKED:
        table.pop(next(iter(table)))


_READY_HELP = "Jobs ready to start but not started"


class _Ready(Collector):
    """Read when Prometheus scrapes one process: jobs ready but not started and the oldest
    one's wait (scheduler lag)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        ready = self.metrics.ready
        yield GaugeMetricFamily("baseshift_jobs_ready", _READY_HELP, value=len(ready))
        yield lag_family(ready.oldest())


class _Live(Collector):
    """Read when Prometheus scrapes, the same whichever process answers: the catalog's
    workflows and errors, the PostgreSQL queue's depth."""

    def __init__(self, bs: App, metrics: Metrics) -> None:
        self.bs = bs
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("baseshift_workflow_errors",
                                "Errors in the workflow folder at its last (re)load",
                                value=_catalog_errors(self.bs))
        yield GaugeMetricFamily("baseshift_workflows_loaded", "Workflows loaded",
                                value=len(self.bs.catalog.entries()))
        m = self.metrics
        if m.queue is not None and m.queue_depth is not None:
            depth = GaugeMetricFamily("baseshift_queue_depth", "Rows of the PostgreSQL "
                                      "attempt queue by state (every server's)",
                                      labels=["state"])
            for state in QUEUE_STATES:
                depth.add_metric([state], m.queue_depth.get(state, 0))
            yield depth
            if m.fleet is None:  # in a fleet, the shared files hold it (`watch_queue`)
                yield CounterMetricFamily(LEASE_EXPIRIES, LEASE_EXPIRIES_HELP,
                                          value=m.queue.lease_expiries)


def _catalog_errors(bs: App) -> int:
    catalog = bs.catalog
    found = [d for e in catalog.entries() for d in e.diagnostics]
    return sum(1 for d in (*found, *catalog.problems) if d.severity is Severity.ERROR)
