"""Engine throughput: jobs per second for a fan-out or a chain of no-op python jobs.

    python bench/engine.py --shape fanout --jobs 1000 --store sqlite
    python bench/engine.py --shape chain --jobs 200 --store memory
    python bench/engine.py --store postgres --workers 2     # attempts on 2 worker processes
    python bench/engine.py --store sqlite --metrics --tracing memory
    python bench/engine.py --store sqlite --overhead --repeat 7
    python bench/engine.py --store sqlite --jobs 16000 --default-gc   # collector untuned
    python bench/engine.py --store sqlite --jobs 4000 --serving       # with the log store

The metrics plugin is disabled unless `--metrics` is given, and spans are recorded only with
`--tracing memory` (the real OpenTelemetry SDK, spans queued for an exporter as for a
collector, then kept in the process: the cost of making and queueing them, not of a
network). `--overhead` runs the four combinations in turn, `--repeat` times
each, and reports each one's median and its cost against the plain run: in wall-clock
throughput (`overhead_percent`) and in CPU time per job (`cpu_overhead_percent`, steadier on a
busy machine), and the same for the least CPU time of the runs
(`min_cpu_overhead_percent`: what the work costs when nothing else disturbed it), and the
median of each round's CPU time against that round's plain run
(`paired_cpu_overhead_percent`: the steadiest of the three on a machine that drifts).

Prints one JSON object. Interpreter start, plugin loading and parsing are excluded: the
clock runs from submitting the run to its completion (all states stored).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fanout_source(n: int, fn: str) -> str:
    return f"""
workflow bench_fanout {{
  version "1.0.0"
  input {{ n: integer }}
  job start uses python {{ with {{ function: "{fn}" }} }}
  job work uses python {{
    needs start
    for i in range(input.n)
    with {{ function: "{fn}", i: i }}
  }}
  job join uses python {{ needs work  with {{ function: "{fn}" }} }}
}}
"""


def chain_source(n: int, fn: str) -> str:
    jobs = [f'  job j0 uses python {{ with {{ function: "{fn}" }} }}']
    jobs += [f'  job j{i} uses python {{ needs j{i - 1}  with {{ function: "{fn}" }} }}'
             for i in range(1, n)]
    return "workflow bench_chain {\n  version \"1.0.0\"\n" + "\n".join(jobs) + "\n}\n"


async def measure(source: str, n: int, store: str, data_dir: Path, parallel: int,
                  profile: str | None, database_url: str | None = None,
                  queue: str = "local", trace: str = "off",
                  metrics: bool = False, sample_ratio: float = 1.0,
                  tune_gc: bool = True, serving: bool = False) -> dict[str, object]:
    from baseshift.core.app.application import BaseShift
    from baseshift.core.settings import Settings
    from baseshift.dsl import compile_source

    bs = BaseShift(Settings(store=store, data_dir=data_dir, load_entrypoints=False,
                            max_parallel=parallel, database_url=database_url, queue=queue,
                            tune_gc=tune_gc,
                            disabled_plugins=() if metrics else ("metrics",),
                            extra={**({} if trace == "off" else {"tracing": {
                                "exporter": trace, "sample_ratio": sample_ratio}}),
                                   "auth": {"first_admin": False}}))
    if serving:  # as in `baseshift serve`: the log store captures what the attempts log
        from baseshift.core.stash import SERVING

        bs.stash[SERVING] = True
    compiled = compile_source(source, "bench.bsw", bs.check_env())
    assert compiled.plan is not None, compiled.diagnostics
    async with bs:
        profiler = _start_profiler(profile)
        started, cpu = time.perf_counter(), time.process_time()
        inputs = {"n": n} if compiled.plan.inputs else {}
        run_id = await bs.engine.submit(compiled.plan, inputs)
        record = await bs.engine.wait(run_id)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        _stop_profiler(profiler, profile)
        snapshot = await bs.store.load_run(run_id)
    assert snapshot is not None
    jobs = sum(1 for j in snapshot.jobs.values() if j.attempts)
    return {"status": record.state.value, "jobs": jobs, "seconds": round(elapsed, 4),
            "jobs_per_second": round(jobs / elapsed, 1),
            "cpu_microseconds_per_job": round(cpu / jobs * 1e6, 1)}


def _start_profiler(profile: str | None) -> object:
    if not profile:
        return None
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="enabled")
    profiler.start()
    return profiler


def _stop_profiler(profiler: object, path: str | None) -> None:
    if profiler is None or path is None:
        return
    profiler.stop()  # type: ignore[attr-defined]
    Path(path).write_text(profiler.output_text(unicode=False, color=False))  # type: ignore[attr-defined]


@contextlib.contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A fresh schema on `server` for one benchmark; dropped afterwards."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield f"{server}?schema={schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


@contextlib.contextmanager
def workers(count: int, url: str, concurrency: int, data_dir: Path) -> Iterator[None]:
    """`count` `baseshift worker` processes on the queue at `url`, ready when yielded."""
    env = {**os.environ, "BASESHIFT_STORE": "postgres", "BASESHIFT_DATABASE_URL": url,
           "BASESHIFT_DATA_DIR": str(data_dir), "BASESHIFT_TEMPLATES": "memory",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-m", "baseshift", "worker", "--concurrency",
                               str(concurrency), "--workflows", str(HERE)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) for _ in range(count)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "ready" not in line:
                raise SystemExit(f"a worker did not start: {line!r}")
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


VARIANTS = {"plain": (False, "off"), "metrics": (True, "off"), "tracing": (False, "memory"),
            "both": (True, "memory")}
"""--overhead: (metrics, tracing) of each combination measured."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=("fanout", "chain"), default="fanout")
    parser.add_argument("--jobs", type=int, default=1000, help="number of no-op jobs")
    parser.add_argument("--store", choices=("memory", "sqlite", "postgres"), default="memory")
    parser.add_argument("--workers", type=int, default=0,
                        help="with --store postgres: attempts run on this many `baseshift "
                        "worker` processes (0: in this process)")
    parser.add_argument("--worker-concurrency", type=int, default=64,
                        help="attempts each worker runs at once")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL server for --store postgres (a fresh schema is used)")
    parser.add_argument("--function", choices=("sync", "async"), default="sync",
                        help="no-op job function kind (default sync, run in a thread)")
    parser.add_argument("--parallel", type=int, default=64, help="global concurrency limit")
    parser.add_argument("--metrics", action="store_true",
                        help="keep the metrics plugin on (Prometheus counters, histograms)")
    parser.add_argument("--tracing", "--trace", dest="tracing", choices=("off", "memory"),
                        default="off", help="record OpenTelemetry spans (memory: kept in the "
                        "process; needs the otel extra)")
    parser.add_argument("--sample-ratio", type=float, default=1.0,
                        help="with --tracing: the share of runs traced")
    parser.add_argument("--overhead", action="store_true",
                        help="measure plain, --metrics, --tracing memory and both, in turn")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs (of each combination); best and median are reported")
    parser.add_argument("--default-gc", action="store_true",
                        help="leave Python's garbage collector as it is (tune_gc = false; "
                        "docs/configuration.md)")
    parser.add_argument("--serving", action="store_true",
                        help="as in `baseshift serve`: the log store keeps the lines of "
                        "every ended attempt (read back from the store after the run, until "
                        "the process ends: time the whole process)")
    parser.add_argument("--profile", metavar="FILE", help="write a pyinstrument profile")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    fn = "jobs:noop" if args.function == "sync" else "jobs:anoop"
    make = fanout_source if args.shape == "fanout" else chain_source
    if args.workers and args.store != "postgres":
        parser.error("--workers needs --store postgres")
    variants = VARIANTS if args.overhead else {"run": (args.metrics, args.tracing)}
    results: dict[str, list[dict[str, object]]] = {name: [] for name in variants}
    for i in range(args.repeat):
        for name, (metrics, tracing) in variants.items():  # in turn: drift hits all alike
            with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
                url = stack.enter_context(postgres_schema(args.database_url)) \
                    if args.store == "postgres" else None
                if args.workers:
                    assert url is not None
                    stack.enter_context(workers(args.workers, url, args.worker_concurrency,
                                                Path(tmp)))
                results[name].append(asyncio.run(measure(
                    make(args.jobs, fn), args.jobs, args.store, Path(tmp), args.parallel,
                    args.profile if i == args.repeat - 1 and not args.overhead else None,
                    url, "postgres" if args.workers else "local", tracing, metrics,
                    args.sample_ratio, not args.default_gc, args.serving)))
    head = {"benchmark": "engine", "shape": args.shape, "store": args.store,
            "workers": args.workers, "function": args.function, "parallel": args.parallel,
            "repeat": args.repeat, "tune_gc": not args.default_gc, "serving": args.serving}
    if not args.overhead:
        print(json.dumps({**head, "metrics": args.metrics, "tracing": args.tracing,
                          "sample_ratio": args.sample_ratio,
                          **_summary(results["run"])}))
        return
    summaries = {name: _summary(runs) for name, runs in results.items()}
    plain, plain_cpu = (float(summaries["plain"][k])  # type: ignore[arg-type]
                        for k in ("median_jobs_per_second", "median_cpu_microseconds_per_job"))
    for summary in summaries.values():
        median = float(summary["median_jobs_per_second"])  # type: ignore[arg-type]
        cpu = float(summary["median_cpu_microseconds_per_job"])  # type: ignore[arg-type]
        summary["overhead_percent"] = round((plain / median - 1) * 100, 1)
        summary["cpu_overhead_percent"] = round((cpu / plain_cpu - 1) * 100, 1)
        summary["min_cpu_overhead_percent"] = round(
            (float(summary["min_cpu_microseconds_per_job"])  # type: ignore[arg-type]
             / float(summaries["plain"]["min_cpu_microseconds_per_job"])  # type: ignore[arg-type]
             - 1) * 100, 1)
    for name, runs in results.items():
        summaries[name]["paired_cpu_overhead_percent"] = _paired(runs, results["plain"])
    print(json.dumps({**head, "sample_ratio": args.sample_ratio, "overhead": summaries}))


def _paired(runs: list[dict[str, object]], plain: list[dict[str, object]]) -> float:
    """The median, over the rounds, of a variant's CPU time per job against the plain run of
    the same round: the machine's slow drift (another tenant, the clock) moves both runs of
    a round alike and cancels out, where it moves the medians of the variants apart."""
    return round(statistics.median(
        float(r["cpu_microseconds_per_job"]) / float(p["cpu_microseconds_per_job"])  # type: ignore[arg-type]
        for r, p in zip(runs, plain, strict=True)) * 100 - 100, 1)


def _summary(runs: list[dict[str, object]]) -> dict[str, object]:
    """Best and median throughput of some runs (and the best run's details)."""
    rates = [float(r["jobs_per_second"]) for r in runs]  # type: ignore[arg-type]
    best = max(runs, key=lambda r: r["jobs_per_second"])  # type: ignore[arg-type,return-value]
    return {**best, "median_jobs_per_second": round(statistics.median(rates), 1),
            "median_seconds": round(statistics.median(
                float(r["seconds"]) for r in runs), 4),  # type: ignore[arg-type]
            "median_cpu_microseconds_per_job": round(statistics.median(
                float(r["cpu_microseconds_per_job"]) for r in runs), 1),  # type: ignore[arg-type]
            "min_cpu_microseconds_per_job": min(
                float(r["cpu_microseconds_per_job"]) for r in runs),  # type: ignore[arg-type]
            "all_runs_jobs_per_second": rates}


if __name__ == "__main__":
    main()
