"""Traces across processes: a `baseshift serve` process queues a run's attempts in
PostgreSQL and a `baseshift worker` process executes them; both export their spans over
OTLP/HTTP to a loopback receiver, and the worker's attempt spans are children of the run span
the server records, in one trace."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from baseshift.core.tracecontext import run_trace
from tests.auth_support import AUTH_OFF
from tests.conftest import free_port
from tests.scaleout.conftest import FANOUT
from tests.scaleout.otlp_receiver import Received, otlp_receiver

WAIT = 90.0  # seconds; only to keep a broken test from hanging the suite
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _config(folder: Path, pg_url: str, collector: str, service: str) -> Path:
    folder.mkdir()
    (folder / "baseshift.toml").write_text(
        f'[baseshift]\nstore = "postgres"\ndatabase_url = "{pg_url}"\nqueue = "postgres"\n'
        f'templates = "memory"\n\n[plugins.tracing]\nendpoint = "{collector}"\n'
        f'service_name = "{service}"\n')
    return folder


def _until(check: Callable[[], bool], what: str, logs: Callable[[], str],
           procs: list[subprocess.Popen[bytes]] | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached:\n{logs()}"
        assert all(p.poll() is None for p in procs or ()), f"a process ended:\n{logs()}"
        time.sleep(0.2)


def test_the_workers_attempt_spans_are_children_of_the_servers_run_span(
        pg_url: str, tmp_path: Path, workflows: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (workflows / "doubling.bsw").write_text(FANOUT)
    with otlp_receiver() as receiver:
        server_dir = _config(tmp_path / "server", pg_url, receiver.url, "bs-server")
        worker_dir = _config(tmp_path / "worker", pg_url, receiver.url, "bs-worker")
        env = {**os.environ, **AUTH_OFF, "BASESHIFT_WORKFLOWS": str(workflows)}
        env.pop("BASESHIFT_CONFIG", None)
        procs: list[subprocess.Popen[bytes]] = []
        outputs: list[Path] = []
        for folder, args in ((worker_dir, ["worker", "--workflows", str(workflows)]),
                             (server_dir, ["serve", "--port", str(port)])):
            out = (folder / "out.log").open("w")
            outputs.append(folder / "out.log")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "baseshift", *args], cwd=folder,
                env={**env, "BASESHIFT_DATA_DIR": str(folder / "data")},
                stdout=out, stderr=subprocess.STDOUT))
            out.close()

        def logs() -> str:
            return "\n".join(p.read_text() for p in outputs)

        try:
            _until(lambda: "ready" in outputs[0].read_text(), "the worker ready", logs, procs)
            _until(lambda: _answers(base), "the server ready", logs, procs)
            response = httpx.post(f"{base}/api/v1/workflows", headers={"traceparent": CALLER},
                                  json={"workflow": "doubling", "inputs": {"n": 2}})
            assert response.status_code == 201, response.text
            run_id = response.json()["workflow_id"]
            _until(lambda: httpx.get(f"{base}/api/v1/workflows/{run_id}").json()["status"]
                   == "COMPLETED", "the run's end", logs, procs)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(30) for proc in procs]
        assert codes == [0, 0], logs()
        _until(lambda: sum(s.service == "bs-worker" for s in receiver.received()) >= 3
               and any(s.name == "run doubling" for s in receiver.received()),
               "the spans of both processes", logs)
        spans = receiver.received()

    trace_id, run_span_id = (f"{n:0{w}x}" for n, w in zip(run_trace(run_id), (32, 16),
                                                           strict=True))
    (run,) = [s for s in spans if s.name == "run doubling"]
    assert (run.service, run.trace_id, run.span_id, run.parent_id) == \
        ("bs-server", trace_id, run_span_id, "")
    (request,) = [s for s in spans if s.name == "POST /api/v1/workflows"]
    assert (request.service, request.trace_id, request.parent_id) == \
        ("bs-server", CALLER[3:35], CALLER[36:52])
    assert run.links == (request.span_id,)
    attempts = sorted((s for s in spans if s.name.startswith("job ")), key=_name)
    assert [s.name for s in attempts] == ["job items", "job work[0]", "job work[1]"]
    for attempt in attempts:
        assert (attempt.service, attempt.trace_id, attempt.parent_id) == \
            ("bs-worker", trace_id, run_span_id), attempt
        assert attempt.attributes["baseshift.run_id"] == run_id


def _name(span: Received) -> str:
    return span.name


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/definitions", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
