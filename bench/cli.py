"""Whole-process timings of the commands a user types first: what a newcomer waits for.

    python bench/cli.py                  # median of 5 runs of each command
    python bench/cli.py --runs 9 --only version check

Each figure is the wall time of a fresh `baseshift` process (interpreter start, imports and
plugin loading included), measured from outside: `--version`; `check workflows/`; `check` of
a file with a syntax error with an empty temporary folder (lark builds its parser from
scratch, as on a new machine); `run workflows/hello.bsw` on SQLite in a new data folder;
and `serve` until the first 200 on `/`. Prints one JSON object: per command the median, min
and max seconds, and the peak memory (MiB) of the `--version` and `check` processes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASESHIFT = [sys.executable, "-m", "baseshift"]
BROKEN = 'workflow w {\n  version "1.0.0"\n  job a uses shell { with { command: "true" }\n}\n'


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed with exit code {result.returncode}")
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_ready(env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting `baseshift serve` until `/` answers 200."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([*BASESHIFT, "serve", "--port", str(port), "--workflows",
                             str(REPO / "workflows")], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit("baseshift serve exited before it answered") from None
                time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(10)


def scenarios(work: Path) -> dict[str, Callable[[dict[str, str]], float]]:
    broken = work / "broken.bsw"
    broken.write_text(BROKEN)

    def fresh(name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name, dir=work))

    def broken_check(env: dict[str, str]) -> float:
        return timed([*BASESHIFT, "check", str(broken)], {**env, "TMPDIR": str(fresh("t"))},
                     work)

    def run_hello(env: dict[str, str]) -> float:
        data = {**env, "BASESHIFT_DATA_DIR": str(fresh("d"))}
        return timed([*BASESHIFT, "run", str(REPO / "workflows" / "hello.bsw")], data, work)

    def serve(env: dict[str, str]) -> float:
        return serve_ready({**env, "BASESHIFT_DATA_DIR": str(fresh("s"))}, work)

    return {
        "version": lambda env: timed([*BASESHIFT, "--version"], env, work),
        "check": lambda env: timed([*BASESHIFT, "check", str(REPO / "workflows")], env, work),
        "check_syntax_error_cold": broken_check,
        "run_hello": run_hello,
        "serve_ready": serve,
    }


def peak_mib(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Peak resident memory of one run of `argv` (a fresh process, measured alone)."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *argv], env=env, cwd=cwd,
                         capture_output=True, text=True, check=True).stdout
    return round(int(out) / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    parser.add_argument("--only", nargs="*", metavar="NAME",
                        help="version, check, check_syntax_error_cold, run_hello, serve_ready")
    args = parser.parse_args()
    env = {**os.environ, "PAYMENT_API_KEY": "bench-key"}
    work = Path(tempfile.mkdtemp(prefix="bs-bench-cli-"))
    try:
        result: dict[str, object] = {"runs": args.runs}
        for name, measure in scenarios(work).items():
            if args.only and name not in args.only:
                continue
            measure(env)  # warm the file system cache, as a second run by a user would be
            seconds = sorted(measure(env) for _ in range(args.runs))
            result[name] = {"median": round(statistics.median(seconds), 3),
                            "min": round(seconds[0], 3), "max": round(seconds[-1], 3)}
            print(f"{name}: {result[name]}", file=sys.stderr)
        result["peak_mib"] = {
            "version": peak_mib([*BASESHIFT, "--version"], env, work),
            "check": peak_mib([*BASESHIFT, "check", str(REPO / "workflows")], env, work)}
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
