"""`baseshift serve --processes 2` as real processes: SQLite store, Redis live status; both
children answer on one port, a run started on one streams from the other, a killed child is
replaced, SIGTERM stops all, one first admin; the memory store is refused."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from tests.auth_support import AUTH_OFF
from tests.conftest import free_port

pytestmark = pytest.mark.slow

GATED = """workflow gated {
  version "1.0.0"
  job wait uses shell { with { command: "while [ ! -f ${input.go} ]; do sleep 0.1; done" } }
  job after uses shell { needs wait with { command: "echo done" } }
  input { go: string }
}
"""
REDIS = "redis://127.0.0.1:6379/0"


def _start(tmp: Path, *, auth_off: bool = True) -> tuple[subprocess.Popen[str], str]:
    (tmp / "flows").mkdir(exist_ok=True)
    (tmp / "flows" / "gated.bsw").write_text(GATED)
    (tmp / "baseshift.toml").write_text(
        f'[plugins.live_redis]\nprefix = "test-processes-{uuid.uuid4().hex}:"\n')
    port = free_port()
    env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp / "data"),
           "BASESHIFT_WORKFLOWS": str(tmp / "flows"), "BASESHIFT_LIVE": "redis",
           "BASESHIFT_REDIS_URL": REDIS, **(AUTH_OFF if auth_off else {})}
    proc = subprocess.Popen([sys.executable, "-m", "baseshift", "serve", "--port", str(port),
                             "--processes", "2"], cwd=tmp, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _instances(base: str, want: int, proc: subprocess.Popen[str]) -> set[str]:
    """The instance ids answering /health/live on fresh connections, until `want` were
    seen."""
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    while len(seen) < want and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            seen.add(httpx.get(base + "/health/live", timeout=2).json()["instance"])
        except httpx.HTTPError:
            time.sleep(0.1)
    return seen


def _client_on(base: str, instance: str) -> httpx.Client:
    """A client whose one kept-alive connection reached the child `instance`."""
    for _ in range(200):
        client = httpx.Client(base_url=base, timeout=30,
                              limits=httpx.Limits(max_connections=1))
        if client.get("/health/live").json()["instance"] == instance:
            return client
        client.close()
    raise AssertionError(f"no connection reached {instance}")


def _pid_of(client: httpx.Client) -> int:
    """The pid of the child a client's connection reached (the metrics summary tells it to
    whoever may read metrics: here anyone, the server runs without sign-in)."""
    pid: int = client.get("/api/v1/metrics").json()["process"]["pid"]
    return pid


def _children(parent: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _holding(pid: int, name: str) -> bool:
    """Whether process `pid` has the file `name` open (a claim is held while it is open)."""
    folder = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd).endswith(name) for fd in folder.iterdir())
    except (FileNotFoundError, ProcessLookupError):  # an fd closed while listing
        return False


def test_two_processes_share_the_port_stream_each_others_runs_and_restart(
        tmp_path: Path) -> None:
    proc, base = _start(tmp_path)
    try:
        instances = _instances(base, 2, proc)
        assert len(instances) == 2
        clients = {_pid_of(client): client
                   for client in (_client_on(base, i) for i in sorted(instances))}
        pids = set(clients)
        assert len(pids) == 2 and proc.pid not in pids
        assert pids == _children(proc.pid)
        # one child leads the cron scheduler: it holds the claim `~lead-cron` (a flock on
        # DB.claims/_lead-cron.lock, plugins/storage/claims.py) open, the other does not
        deadline = time.monotonic() + 60
        while not any(_holding(p, "_lead-cron.lock") for p in pids) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [_holding(p, "_lead-cron.lock") for p in pids].count(True) == 1
        a, b = sorted(pids)
        starter, watcher = clients[a], clients[b]
        kept = watcher.get("/health/live").json()["instance"]
        go = tmp_path / "go"
        response = starter.post("/api/v1/workflows",
                                json={"workflow": "gated", "inputs": {"go": str(go)}})
        assert response.status_code == 201, response.text
        run_id = response.json()["workflow_id"]
        with watcher.stream("GET", f"/api/v1/workflows/{run_id}/events") as stream:
            assert stream.status_code == 200
            chunks = stream.iter_text()
            first = next(chunks)  # the snapshot: the stream listens from here on
            assert run_id in first
            go.touch()  # the run (executed by `a`) goes on; `b` hears it through Redis
            text = first + "".join(chunks)
        assert "SUCCEEDED" in text.split(first, 1)[1], text
        starter.close()
        watcher.close()

        os.kill(a, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while (len(_children(proc.pid)) < 2 or a in _children(proc.pid)) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        now = _instances(base, 2, proc)
        assert kept in now and len(now) == 2 and not now <= instances
        replaced = _children(proc.pid)
        assert a not in replaced and b in replaced and len(replaced) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
        code = proc.returncode
    assert code == 0, output
    assert f"server process {a} exited" in output
    assert not _children(proc.pid)
    for pid in pids | replaced:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_one_first_admin_one_printed_password_and_no_orphan(tmp_path: Path) -> None:
    """...and a supervisor killed with SIGKILL leaves no child serving (they hold its
    output pipe open: `communicate` returns once they all have exited)."""
    proc, base = _start(tmp_path, auth_off=False)
    try:
        assert len(_instances(base, 2, proc)) == 2
        pids = _children(proc.pid)
        assert len(pids) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        output = proc.communicate(timeout=60)[0]
    assert output.count("It is shown only this once") == 1, output
    for pid in pids:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists()

    async def users() -> int:
        async with BaseShift(Settings(data_dir=tmp_path / "data",
                                      load_entrypoints=False)) as bs:
            return await bs.store.count_users()  # type: ignore[attr-defined,no-any-return]

    assert asyncio.run(users()) == 1


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("BASESHIFT_STORE", "memory", "Config 'store' is 'memory'"),
    ("BASESHIFT_LIVE", "local", "Config 'live' is 'local'"),
])
def test_settings_processes_cannot_share_are_refused(
        run_cli: object, variable: str, value: str, expected: str) -> None:
    env = {"BASESHIFT_LIVE": "redis", "BASESHIFT_REDIS_URL": REDIS, variable: value}
    result = run_cli("serve", "--processes", "2", "--port", str(free_port()),  # type: ignore[operator]
                     env=env, timeout=60)
    assert result.exit_code == 2
    assert expected in result.stderr and "hint:" in result.stderr


def test_a_child_dying_too_often_stops_the_supervisor(tmp_path: Path) -> None:
    proc, base = _start(tmp_path)
    killed: set[int] = set()
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            for pid in _children(proc.pid) - killed:
                with contextlib.suppress(ProcessLookupError):  # gone since it was listed
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1, output
    assert "5 restarts in 60s is the limit; stopping" in output
    assert output.count("exited (-9); started") == 5  # five restarts, not a sixth


def test_a_port_in_use_is_one_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "data"),
               "BASESHIFT_LIVE": "redis", "BASESHIFT_REDIS_URL": REDIS, **AUTH_OFF}
        result = subprocess.run([sys.executable, "-m", "baseshift", "serve", "--port",
                                 str(port), "--processes", "2"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"error: cannot serve on 127.0.0.1:{port}: Address already in use" \
        in result.stderr
    assert "serves from" not in result.stderr  # no child was started


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(client: httpx.Client) -> tuple[str, Samples]:
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get("/metrics").text
    return text, {(s.name, frozenset(s.labels.items())): s.value
                  for f in text_string_to_metric_families(text) for s in f.samples}


def _metrics_dir(pid: int) -> Path:
    variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [v.split(b"=", 1)[1] for v in variables if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(found[0].decode())


def test_metrics_count_every_process_whichever_answers_the_scrape(tmp_path: Path) -> None:
    from tests.web.prometheus_support import promtool, until

    unmatched = ("http_requests_total",
                 frozenset({("method", "GET"), ("endpoint", "unmatched"), ("status", "404")}))
    proc, base = _start(tmp_path)
    clients: dict[int, httpx.Client] = {}
    try:
        instances = _instances(base, 2, proc)
        for instance in sorted(instances):
            client = _client_on(base, instance)
            clients[_pid_of(client)] = client
        a, b = sorted(clients)
        shared = _metrics_dir(a)
        assert shared == _metrics_dir(b) and shared.stat().st_mode & 0o777 == 0o700
        for pid, count in ((a, 3), (b, 5)):
            for _ in range(count):
                assert clients[pid].get(f"/no/such/{pid}").status_code == 404
        for client in clients.values():
            # a request is counted just after its answer is sent: wait for the last one
            until(lambda: _scrape(client)[1].get(unmatched) == 8)  # noqa: B023
            text, found = _scrape(client)  # both children's, whichever answered
            assert found[("baseshift_jobs_ready", frozenset())] == 0
            assert ("baseshift_scheduler_lag_seconds", frozenset()) in found
            assert "ready_since" not in text and "process_cpu_seconds_total" not in text
            linted = promtool("check", "metrics", stdin=text)
            assert linted.returncode == 0, linted.stdout + linted.stderr
        os.kill(a, signal.SIGKILL)  # what `a` counted stays counted after it is replaced
        deadline = time.monotonic() + 90
        while (len(_children(proc.pid)) < 2 or a in _children(proc.pid)) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_instances(base, 2, proc)) == 2 and a not in _children(proc.pid)
        with httpx.Client(base_url=base, timeout=30) as client:
            assert _scrape(client)[1][unmatched] == 8
    finally:
        for client in clients.values():
            client.close()
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert not shared.exists()  # the supervisor removed the directory
