"""Real `baseshift serve` and `prometheus` processes for the monitoring tests
(tests/web/test_prometheus.py, tests/web/test_grafana.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.auth_support import AUTH_OFF
from tests.conftest import free_port, stop_process

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus"
WAIT = 120.0
"""Upper bound for a process to start or a scrape to arrive; no test depends on speed."""


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run Prometheus's `promtool` (from the rules folder)."""
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                          cwd=RULES, timeout=WAIT)


@contextmanager
def serving(tmp_path: Path, flows: dict[str, str],
            environment: dict[str, str] | None = None) -> Iterator[str]:
    """A `baseshift serve` process (authentication off, loopback) with `flows` (name → text),
    its environment completed by `environment` (a PostgreSQL store, say)."""
    (tmp_path / "flows").mkdir()
    for name, text in flows.items():
        (tmp_path / "flows" / f"{name}.bsw").write_text(text)
    port = free_port()
    env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "data"),
           "BASESHIFT_WORKFLOWS": str(tmp_path / "flows"), **AUTH_OFF, **(environment or {})}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "baseshift", "serve", "--port",
                                 str(port)], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: answers(f"{url}/api/v1/definitions"), proc, log)
        yield url
    finally:
        stop_process(proc)


@contextmanager
def daemon(argv: list[str], ready_url: str, cwd: Path, log: Path,
           environment: dict[str, str] | None = None) -> Iterator[None]:
    """Run `argv` (a Prometheus, an Alertmanager, a `baseshift worker`) until the block ends;
    ready when `ready_url` answers 200. `environment` adds to this process's."""
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(environment or {})})
    try:
        until(lambda: answers(ready_url), proc, log)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_prometheus(tmp_path: Path, config: str) -> Iterator[str]:
    """A real Prometheus on loopback with the configuration text `config`; yields its URL."""
    port = free_port()
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    url = f"http://127.0.0.1:{port}"
    with daemon(["prometheus", f"--config.file={path}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                f"{url}/-/ready", tmp_path, tmp_path / "prometheus.log"):
        yield url


def query(prometheus: str, promql: str) -> list[Any]:
    """The result of an instant query through Prometheus' HTTP API."""
    answer = httpx.get(f"{prometheus}/api/v1/query", timeout=10, params={"query": promql})
    assert answer.status_code == 200, answer.text
    result: list[Any] = answer.json()["data"]["result"]
    return result


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def until(predicate: Callable[[], bool], proc: subprocess.Popen[Any] | None = None,
          log: Path | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(log.read_text() if log else "the process ended")
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {WAIT:g}s" +
                                 (f": {log.read_text()[-2000:]}" if log else ""))
        time.sleep(0.2)
