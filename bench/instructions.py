"""Instructions per job of the engine benchmark, counted by valgrind's callgrind: the same
count on a busy machine as on an idle one, so the overhead of metrics and tracing can be
told to a fraction of a percent where CPU time moves by several points.

    python bench/instructions.py                        # plain, metrics, tracing, both
    python bench/instructions.py --variants plain,both --sizes 200,1200
    python bench/instructions.py --repeat 3      # the median of 3 counts of each variant

Each variant runs `bench/engine.py --store sqlite` (a fan-out of no-op python jobs) under
callgrind at two sizes; the difference of the two totals over the difference of the sizes is
the count per job: interpreter start, imports and parsing cancel out. Needs valgrind (the
Debian package `valgrind`). Slow: the interpreter starts in about a minute under callgrind,
so the runs go side by side, one per core.

Prints one JSON object: each variant's instructions per job and its overhead against plain.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {"plain": (), "metrics": ("--metrics",), "tracing": ("--tracing", "memory"),
            "both": ("--metrics", "--tracing", "memory"),
            "unsampled": ("--tracing", "memory", "--sample-ratio", "0.0001")}
"""The engine benchmark's options of each variant (`unsampled`: tracing on, this run not
sampled)."""
_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(jobs: int, options: tuple[str, ...]) -> int:
    """Instructions of one whole `bench/engine.py` run of `jobs` jobs under callgrind."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         str(HERE / "engine.py"), "--store", "sqlite", "--jobs", str(jobs), "--repeat", "1",
         *options], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONHASHSEED": "0"}, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench/engine.py {' '.join(options)} failed under callgrind:\n"
                         f"{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="plain,metrics,tracing,both",
                        help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--sizes", default="200,1200",
                        help="the two fan-out sizes whose difference is measured")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each variant this many times and report the median "
                        "(the engine's batching moves one count by a point or so)")
    args = parser.parse_args()
    names = [n for n in args.variants.split(",") if n]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    small, large = sorted(int(n) for n in args.sizes.split(","))
    if small == large:
        parser.error("--sizes needs two different sizes")
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    runs = [(name, size, i) for i in range(args.repeat) for name in names
            for size in (small, large)]
    print(f"{len(runs)} runs under callgrind, {os.cpu_count()} at a time…", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(zip(runs, pool.map(lambda run: instructions(
            run[1], VARIANTS[run[0]]), runs), strict=True))
    per_job = {name: round(statistics.median(
        (totals[(name, large, i)] - totals[(name, small, i)]) / (large - small)
        for i in range(args.repeat))) for name in names}
    plain = per_job.get("plain")
    print(json.dumps({"benchmark": "instructions", "store": "sqlite", "shape": "fanout",
                      "sizes": [small, large], "repeat": args.repeat, "variants": {
                          name: {"instructions_per_job": count,
                                 **({"overhead_percent": round((count / plain - 1) * 100, 1)}
                                    if plain else {})}
                          for name, count in per_job.items()}}))


if __name__ == "__main__":
    main()
