"""Kill -9 a real `baseshift run` mid-run, then `baseshift resume`: no accepted work is lost,
no SUCCEEDED job runs again, and interrupted attempts are retried as new attempts."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FLOW = """
workflow crashy {
  version "1.0.0"
  input { log: string, pause: number = 0.4 }
  job first uses shell { with { command: "echo first >> ${input.log}; sleep 0.2" } }
  job fan uses shell {
    needs first
    for n in range(6)
    with { command: "echo fan${n} >> ${input.log}; sleep 0.3" }
  }
  job middle uses shell {
    needs first
    with { command: "echo middle >> ${input.log}; sleep ${input.pause}" }
  }
  job last uses shell { needs fan, middle  with { command: "echo last >> ${input.log}" } }
}
"""
ALL = {"first", "middle", "last", *(f"fan{i}" for i in range(6))}


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "BASESHIFT_DATA_DIR": str(data), "BASESHIFT_MAX_PARALLEL": "3"}


def _succeeded_keys(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT key FROM jobs WHERE state = 'SUCCEEDED'").fetchall()
    return {k.replace("[", "").replace("]", "") for (k,) in rows}


def _wait_for_lines(log: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"the run never logged {count} lines")


@pytest.mark.parametrize("kill_after_lines", [1, 3, 6])
def test_kill_9_then_resume_completes_every_run(tmp_path: Path, kill_after_lines: int) -> None:
    flow, log, data = tmp_path / "crashy.bsw", tmp_path / "jobs.log", tmp_path / "data"
    flow.write_text(FLOW)
    proc = subprocess.Popen([sys.executable, "-m", "baseshift", "run", str(flow),
                             "--input", f"log={log}"], env=_env(data), text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_lines(log, kill_after_lines, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _succeeded_keys(data / "baseshift.db")
    assert done_before != ALL, "the run finished before it was killed; kill earlier"

    resumed = subprocess.run([sys.executable, "-m", "baseshift", "resume", "--json"],
                             env=_env(data), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    run = json.loads(resumed.stdout)
    assert run["status"] == "COMPLETED"
    assert {j["state"] for j in run["jobs"]} == {"SUCCEEDED"}

    executions = Counter(log.read_text().split())
    assert set(executions) == ALL
    for key in done_before:
        assert executions[key] == 1, f"{key} had succeeded before the crash but ran again"
    for job in run["jobs"]:
        states = [a["state"] for a in job["attempts"]]
        if len(states) > 1:  # it was running at the crash: lost attempt, then a new one
            assert states[:-1] == ["CANCELLED"] * (len(states) - 1)
            assert "interrupted" in job["attempts"][0]["error"]
        assert states[-1:] in ([], ["SUCCEEDED"])


def test_resume_leaves_a_run_that_is_still_executing_alone(tmp_path: Path) -> None:
    flow, log, data = tmp_path / "crashy.bsw", tmp_path / "jobs.log", tmp_path / "data"
    flow.write_text(FLOW)
    proc = subprocess.Popen([sys.executable, "-m", "baseshift", "run", str(flow),
                             "--input", f"log={log}", "--input", "pause=8"], env=_env(data),
                            text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_lines(log, 1, proc)
        resumed = subprocess.run([sys.executable, "-m", "baseshift", "resume"],
                                 env=_env(data), capture_output=True, text=True, timeout=60)
        assert resumed.returncode == 0
        assert "being executed by another process" in resumed.stderr
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert Counter(log.read_text().split()) == dict.fromkeys(ALL, 1)
