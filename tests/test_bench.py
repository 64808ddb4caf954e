"""Every benchmark of bench/ runs at a small size and prints its JSON: a benchmark that no
longer runs (as bench/api.py did when /health/live stopped answering a pid) is found here,
not by the person measuring. Figures are not checked: the machines are noisy."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.xdist_group("bench")  # they measure: one at a time


def bench(*args: str) -> dict[str, Any]:
    """The last JSON line `python bench/ARGS` printed."""
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    assert lines, done.stdout[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_engine_with_the_overhead_of_metrics_and_tracing() -> None:
    found = bench("bench/engine.py", "--store", "sqlite", "--jobs", "20", "--overhead",
                  "--repeat", "1")
    assert found["benchmark"] == "engine"
    assert {"plain", "metrics", "tracing", "both"} <= set(found["overhead"])
    assert all(run["status"] == "COMPLETED" for run in found["overhead"].values())
    assert found["overhead"]["plain"]["paired_cpu_overhead_percent"] == 0.0
    assert all(isinstance(v["paired_cpu_overhead_percent"], float)
               for v in found["overhead"].values())


def test_instructions_per_job_under_callgrind() -> None:
    """A small run (two runs side by side): about a minute, since the interpreter starts
    slowly under callgrind. The sizes are far enough apart that the engine's own work, not
    the few hundred thousand instructions a start varies by, makes the difference."""
    found = bench("bench/instructions.py", "--variants", "plain", "--sizes", "5,200")
    assert found["benchmark"] == "instructions"
    assert found["variants"]["plain"]["instructions_per_job"] > 0
    assert found["variants"]["plain"]["overhead_percent"] == 0.0


@pytest.mark.parametrize("processes", ["1", "2"])
def test_api_status_reads_on_one_and_several_processes(processes: str) -> None:
    found = bench("bench/api.py", "--seconds", "0.5", "--scenario", "status",
                  "--processes", processes)
    assert (found["scenario"], found["processes"], found["errors"]) == (
        "status", int(processes), 0)
    assert found["requests"] > 0 and found["server_cpu_ms_per_request"] > 0


def test_the_wrappers_cost_of_one_attempt() -> None:
    found = bench("bench/wrappers.py", "--attempts", "200", "--repeat", "1")
    assert found["benchmark"] == "wrappers"
    assert set(found["cpu_microseconds_per_attempt"]) == {
        "metrics", "tracing", "both", "unsampled", "job events", "job and attempt events"}


@pytest.mark.parametrize("args", [
    ("bench/parse.py", "--jobs", "20", "--repeat", "1"),
    ("bench/cli.py", "--runs", "1", "--only", "version"),
    ("bench/sealing.py", "--values", "50"),
], ids=["parse", "cli", "sealing"])
def test_the_other_benchmarks_run_small(args: tuple[str, ...]) -> None:
    assert bench(*args)
