"""`baseshift serve` as a real process: ready message, kill -9 and restart, SIGTERM, hypercorn."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth_support import AUTH_OFF
from tests.conftest import free_port

pytestmark = pytest.mark.slow

SLOW_FLOW = """workflow slow_chain {
  version "1.0.0"
  job first uses shell { with { command: "echo 1" } }
  job nap uses shell {
    needs first
    with { command: "touch ${input.marker}; sleep 3; echo 2" }
  }
  job last uses shell { needs nap with { command: "echo 3" } }
  input { marker: string }
}
"""


class Server:
    """One `baseshift serve` process on a private port, data dir and workflows folder."""

    def __init__(self, tmp: Path, *command: str, serve_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp / "data"),
               "BASESHIFT_WORKFLOWS": str(tmp / "flows"), **AUTH_OFF}
        args = command or ("-m", "baseshift", "serve", "--port", str(self.port), *serve_args)
        if command:
            args = (*command, "--bind", f"127.0.0.1:{self.port}")
        self.proc = subprocess.Popen([sys.executable, *args], cwd=tmp, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.output = ""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/api/v1/definitions", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.read()
            time.sleep(0.2)
        raise AssertionError("server did not become ready: " + self.read())

    def read(self) -> str:
        if self.proc.poll() is not None and self.proc.stdout and not self.proc.stdout.closed:
            self.output += self.proc.stdout.read()
            self.proc.stdout.close()
        return self.output

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.read()
        return code


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "slow.bsw").write_text(SLOW_FLOW)
    yield tmp_path


def _wait_for(predicate: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _run(server: Server, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.base}/api/v1/workflows/{run_id}",
                                     timeout=5).json()
    return body


def _start(server: Server, marker: Path) -> str:
    response = httpx.post(f"{server.base}/api/v1/workflows", timeout=5,
                          json={"workflow": "slow_chain", "inputs": {"marker": str(marker)}})
    assert response.status_code == 201, response.text
    run_id: str = response.json()["workflow_id"]
    return run_id


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_interrupted_by_a_stop_completes_after_restart(tmp: Path, sig: int) -> None:
    server = Server(tmp)
    server.wait_ready()
    marker = tmp / "nap-started"
    run_id = _start(server, marker)
    _wait_for(marker.exists)
    code = server.stop(sig)
    assert f"ready: open http://127.0.0.1:{server.port}/" in server.output
    if sig == signal.SIGTERM:
        assert code == 0, server.output
        assert "resume when the server starts again" in server.output

    again = Server(tmp)
    again.wait_ready()
    try:
        _wait_for(lambda: _run(again, run_id)["status"] in ("COMPLETED", "FAILED",
                                                           "CANCELLED"), timeout=120)
        final = _run(again, run_id)
        assert final["status"] == "COMPLETED", (final, again.read())
        jobs = {j["key"]: j for j in final["jobs"]}
        assert len(jobs["first"]["attempts"]) == 1  # a succeeded job never runs again
        states = [a["state"] for a in jobs["nap"]["attempts"]]
        assert states == ["CANCELLED", "SUCCEEDED"]  # the lost attempt, then a new one
    finally:
        again.stop(signal.SIGTERM)


def test_hypercorn_serves_the_module_level_app(tmp: Path) -> None:
    server = Server(tmp, "-m", "hypercorn", "baseshift.server:app")
    server.wait_ready()
    try:
        names = [d["name"] for d in httpx.get(server.base + "/api/v1/definitions").json()]
        assert names == ["slow_chain"]
    finally:
        server.stop(signal.SIGTERM)


FAILING_FLOW = """workflow failing {
  version "1.0.0"
  job boom uses shell { with { command: "echo printed-by-the-step >&2; exit 3" } }
}
"""


def _console_session(tmp: Path, *serve_args: str) -> str:
    """Serve, reload a broken file, fail a run and send a request whose path holds a
    terminal escape; returns everything the server printed."""
    (tmp / "flows" / "failing.bsw").write_text(FAILING_FLOW)
    server = Server(tmp, serve_args=serve_args)
    server.wait_ready()
    try:
        (tmp / "flows" / "broken.bsw").write_text("workflow broken {\n  job a uses\n}\n")
        _wait_for(lambda: any(d["name"] == "broken" or not d.get("ok", True) for d in
                              httpx.get(server.base + "/api/v1/definitions").json()), 30)
        time.sleep(1.5)  # a reload of the catalog happens once a second
        response = httpx.post(f"{server.base}/api/v1/workflows", json={"workflow": "failing"})
        run_id = response.json()["workflow_id"]
        _wait_for(lambda: _run(server, run_id)["status"] == "FAILED", 60)
        httpx.get(server.base + "/ui/%1b[2Jcleared?token=hunter2")
        time.sleep(0.5)
    finally:
        server.stop(signal.SIGTERM)
    return server.output.replace(run_id, "RUN_ID")


def test_the_console_says_what_the_server_does(tmp: Path) -> None:
    out = _console_session(tmp, "--log-format", "console")
    assert re.search(r"warning reloaded 3 workflow\(s\) from .*; broken: broken.bsw \(1 error",
                     out), out
    assert ("info run RUN_ID of workflow failing failed (job boom); `baseshift show RUN_ID` "
            "gives the reasons") in out, out
    assert "printed-by-the-step" not in out  # what a step prints may hold a secret
    assert re.search(r'info 127.0.0.1:\d+ "POST /api/v1/workflows" 201', out), out
    assert '"GET /ui/\\x1b[2Jcleared" 404' in out, out  # escaped, without the query string
    assert "\x1b" not in out and "hunter2" not in out


def test_quiet_serve_prints_no_access_reload_or_run_lines(tmp: Path) -> None:
    out = _console_session(tmp, "--quiet", "--log-format", "console")
    assert "ready: open" in out
    assert "warning reloaded 3 workflow(s)" in out  # a broken file is a warning
    for noisy in ("info", "of workflow failing failed", '"POST /api/v1/workflows"', "GET /ui"):
        assert noisy not in out, out


def test_serve_logs_json_lines_when_its_output_is_not_a_terminal(tmp: Path) -> None:
    """No --log-format, stderr a pipe: one JSON object per line, with the fields."""
    out = _console_session(tmp)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert lines, out
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line), line
    reload = next(x for x in lines if x.get("event") == "workflows.reloaded")
    assert reload["level"] == "warning"
    [broken] = reload["broken"]
    assert broken["file"].endswith("broken.bsw") and broken["errors"] == 1
    assert broken["first_error"].startswith("3:1: error[dsl.")  # where the `}` is
    failed = next(x for x in lines if x.get("event") == "run.failed")
    assert (failed["run_id"], failed["jobs"]) == ("RUN_ID", ["boom"])
    access = [x for x in lines if x.get("event") == "http.request"]
    start = next(x for x in access if x["method"] == "POST")
    assert (start["route"], start["status"]) == ("/api/v1/workflows", 201)
    polled = [x for x in access if x["path"] == "/api/v1/workflows/RUN_ID"]
    assert polled and {x["route"] for x in polled} == {"/api/v1/workflows/{run_id}"}
    assert len({x["request_id"] for x in access}) == len(access)
    assert "\x1b" not in out and "hunter2" not in out
