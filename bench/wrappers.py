"""What the metrics' and the tracing's attempt wrappers cost around one attempt, alone.

    python bench/wrappers.py                      # 200,000 attempts, least of 7 runs
    taskset -c 1 python bench/wrappers.py --attempts 50000 --repeat 5

Each variant makes the wrappers of one attempt as the engine does (the plugins'
`job_wrapper` hooks) and enters them around nothing, in a loop: the cost a job pays for
being counted and traced, apart from the engine's own work (bench/engine.py `--overhead`
measures them inside the engine, where the caches and the batching move the figures by
several points). `tracing` makes a recorded span, queued for the `memory` exporter and
exported every 512 (the exporter's list emptied each time, as a real exporter forgets what
it sent); `unsampled` traces a run not sampled; `metrics` is the wrapper a worker's metrics
enter around each attempt it executes (`both`: with the tracing's). The rest of what the
metrics cost a job is counting its three events (READY, RUNNING, SUCCEEDED) given to
`track_events` in rounds of 64 jobs, as a fan-out's engine rounds give them, beyond the
ready-jobs tracker (which every run pays, the alerts feed it too): `job and attempt events`
where the engine runs the attempts (the server, `bench/engine.py --metrics`: the attempt is
counted and timed from them, with no wrapper), `job events` where workers run them.

Prints one JSON object: CPU microseconds per attempt of each variant, the least of the runs
(what the code costs when nothing else disturbed it), an empty loop's taken away.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

BATCH = 512
"""Spans exported at a time (the exporting thread's batch, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`)."""


def variants(attempts: int) -> dict[str, Callable[[], None]]:
    """Each variant's loop of `attempts` attempts."""
    from baseshift.core.protocols import JobContext
    from baseshift.core.records import RunRecord
    from baseshift.plugins.metrics.collector import Metrics
    from baseshift.plugins.metrics.plugin import _Timing
    from baseshift.plugins.tracing.plugin import _Spans
    from baseshift.plugins.tracing.spans import Tracing

    recorded, unsampled = Tracing("memory", "", "bench"), Tracing("memory", "", "bench", 1e-9)
    metrics = _Timing(Metrics()).job_wrapper
    traced, untraced = _Spans(recorded).job_wrapper, _Spans(unsampled).job_wrapper
    run_id = next(r for r in (f"run-{i}" for i in range(1000))
                  if not unsampled.run_trace(r).sampled)
    run = RunRecord(run_id, "bench", "1.0.0", "", "", {})
    ctx = JobContext(run_id, "work[1]", 1, {})

    def loop(*wrappers: Callable[[RunRecord, JobContext], Any]) -> Callable[[], None]:
        def attempts_of() -> None:
            for done in range(attempts):
                entered: list[AbstractContextManager[object]] = [w(run, ctx)
                                                                 for w in wrappers]
                if len(entered) == 2:
                    with entered[0], entered[1]:
                        pass
                elif entered:
                    with entered[0]:
                        pass
                if done % BATCH == BATCH - 1:
                    exported()
            exported()
        return attempts_of

    def exported() -> None:
        """Export what waits (a batch, as the exporting thread would), and forget it as an
        exporter that sent it would: kept, the spans would fill the memory."""
        recorded.finished_spans()
        recorded.exporter.clear()  # type: ignore[attr-defined]

    return {"empty": loop(), "metrics": loop(metrics), "tracing": loop(traced),
            "both": loop(traced, metrics), "unsampled": loop(untraced),
            **job_events(attempts)}


ROUND = 64
"""Jobs whose events one engine round gives (`--parallel`'s default)."""


def job_events(jobs: int) -> dict[str, Callable[[], None]]:
    """Two loops over the events of `jobs` jobs of one run (rounded down to whole rounds), in
    rounds: `ready` feeds the ready-jobs tracker alone (taken away, as `empty` is), `job
    events` the tracker and then the metrics, which skip the tracker for a batch it has seen
    (as in the engine). In a round, the jobs of the round before end, this round's start and
    the next round's are made ready; the batches of 16 rounds are made once, then given in
    turn."""
    from baseshift.core.events import JobStateChanged, RunStateChanged
    from baseshift.core.states import JobState, RunState
    from baseshift.plugins.metrics.collector import Metrics

    ready, running, done = JobState.READY, JobState.RUNNING, JobState.SUCCEEDED
    cycle = 16
    keys = [[f"work[{n * ROUND + i}]" for i in range(ROUND)] for n in range(cycle)]
    batches: list[list[Any]] = [[
        *(JobStateChanged("run-1", n, k, running, done, 1) for k in keys[n - 1]),
        *(JobStateChanged("run-1", n, k, ready, running, 1) for k in keys[n]),
        *(JobStateChanged("run-1", n, k, None, ready) for k in keys[(n + 1) % cycle])]
        for n in range(cycle)]
    rounds = jobs // ROUND
    started = RunStateChanged("run-1", 0.0, "bench", None, RunState.RUNNING)

    def loop(metrics: bool, attempts_here: bool = False) -> Callable[[], None]:
        def events_of() -> None:
            counted = Metrics()
            counted.attempts_here = attempts_here
            counted.observe_all([started])
            for n in range(rounds):
                batch = batches[n % cycle]
                counted.ready.observe_all(batch)
                if metrics:
                    counted.observe_all(batch)
        return events_of

    return {"ready": loop(False), "job events": loop(True),
            "job and attempt events": loop(True, attempts_here=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=200_000, help="attempts per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each variant")
    args = parser.parse_args()
    loops = variants(args.attempts)
    least: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, attempts_of in loops.items():  # in turn: drift hits all alike
            began = time.process_time()
            attempts_of()
            spent = (time.process_time() - began) / args.attempts * 1e6
            least[name] = min(least.get(name, spent), spent)
    empty, ready = least.pop("empty"), least.pop("ready")
    for name in ("job events", "job and attempt events"):
        least[name] += empty - ready  # beyond the tracker every run pays
    print(json.dumps({"benchmark": "wrappers", "attempts": args.attempts,
                      "repeat": args.repeat, "cpu_microseconds_per_attempt": {
                          name: round(spent - empty, 3) for name, spent in least.items()}}))


if __name__ == "__main__":
    main()
