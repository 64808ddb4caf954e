"""Two `baseshift serve` processes on one PostgreSQL schema behind a real NGINX (its own
prefix under the test's folder, a child process on loopback, never the system service),
managed through the load balancer API: TLS ends at NGINX, requests reach both servers,
a removed server gets no more traffic, a SIGKILLed one is reported down while NGINX keeps
answering through the other."""
from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.auth_support import AUTH_OFF
from tests.conftest import free_port, stop_process
from tests.tls_support import make_pki

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
UPSTREAM = re.compile(r"upstream=(.*?) upstream_status=")
"""The servers NGINX tried for a request, in the access log (`A, B` when A failed)."""


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """Poll `predicate` until it is truthy (the deadline only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Fleet:
    """The serve processes and NGINX of one test; all stopped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, **AUTH_OFF, "PYTHONUNBUFFERED": "1",
                    "BASESHIFT_CONFIG": str(folder / "baseshift.toml")}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.nginx: subprocess.Popen[str] | None = None

    def serve(self, port: int) -> str:
        address = f"127.0.0.1:{port}"
        with open(self.folder / f"serve-{port}.log", "w") as log:
            self.procs[address] = subprocess.Popen(
                [sys.executable, "-m", "baseshift", "serve", "--port", str(port)],
                cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True)
        _wait(lambda: self._ready(address), f"the server on {address}")
        return address

    def _ready(self, address: str) -> bool:
        proc = self.procs[address]
        assert proc.poll() is None, (self.folder / f"serve-{address.split(':')[1]}.log"
                                     ).read_text()
        try:
            return httpx.get(f"http://{address}/api/v1/definitions",
                             timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_nginx(self, prefix: Path) -> None:
        self.nginx = subprocess.Popen(
            [NGINX, "-p", f"{prefix}/", "-e", str(prefix / "error.log"),
             "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(30)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for proc in self.procs.values():
            if proc.poll() is None:
                stop_process(proc)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path)
    try:
        yield fleet
    finally:
        fleet.stop()


def _workers(master: int) -> set[int]:
    return {p.pid for p in psutil.Process(master).children()
            if "worker" in " ".join(p.cmdline())}


def _reloaded(master: int, old: set[int]) -> set[int]:
    """Wait until NGINX runs only new workers (the old ones finished and left)."""
    return _wait(lambda: (lambda now: now if now and not now & old else None)(_workers(master)),
                 "NGINX's new workers")


def test_two_servers_behind_nginx(fleet: Fleet, tmp_path: Path, pg_url: str) -> None:
    prefix = tmp_path / "nginx"
    pki = make_pki(tmp_path)
    lb_port = free_port()
    (tmp_path / "flows").mkdir()
    (tmp_path / "baseshift.toml").write_text(f"""
[baseshift]
store = "postgres"
database_url = "{pg_url}"
templates = "memory"
data_dir = "data"
workflows_dir = "flows"

[plugins.loadbalancer]
nginx = "{NGINX}"
prefix = "{prefix}"
listen = "127.0.0.1:{lb_port}"
tls_cert = "{pki.cert}"
tls_key = "{pki.key}"
health_interval = 0.2
""")
    a = fleet.serve(free_port())
    b = fleet.serve(free_port())
    admin = f"http://{a}/api/v1/load_balancer"
    assert "return 503;" in (prefix / "nginx.conf").read_text()  # written at start
    fleet.start_nginx(prefix)
    assert fleet.nginx is not None
    master = fleet.nginx.pid
    front = f"https://127.0.0.1:{lb_port}"
    trust = ssl.create_default_context(cafile=str(pki.ca))

    def through_nginx() -> httpx.Response | None:
        assert fleet.nginx is not None and fleet.nginx.poll() is None, \
            (prefix / "error.log").read_text()
        try:
            return httpx.get(f"{front}/api/v1/definitions", verify=trust, timeout=5)
        except httpx.ConnectError:
            return None
    first = _wait(through_nginx, "NGINX")
    assert first.status_code == 503  # no server registered yet
    status = httpx.get(f"{admin}/status", timeout=10).json()
    assert status["servers"] == [] and status["nginx"]["running"] is True
    assert status["nginx"]["pid"] == master

    def change(route: str, address: str) -> dict[str, Any]:
        old = _workers(master)
        answer = httpx.post(f"{admin}/{route}", json={"address": address}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["reloaded"] is True
        _reloaded(master, old)
        result: dict[str, Any] = answer.json()
        return result

    change("add_server", a)
    # registered through the other server: one registry in the shared store
    old = _workers(master)
    answer = httpx.post(f"http://{b}/api/v1/load_balancer/add_server",
                        json={"address": b}, timeout=30)
    assert answer.json()["servers"] == [{"address": a, "weight": 1},
                                        {"address": b, "weight": 1}], answer.text
    _reloaded(master, old)

    access_log = prefix / "access.log"

    def upstreams_of(count: int) -> list[str]:
        start = len(access_log.read_text().splitlines())
        with httpx.Client(verify=trust, timeout=10) as client:
            for _ in range(count):
                answer = client.get(f"{front}/api/v1/definitions",
                                    headers={"Connection": "close"})
                assert answer.status_code == 200, answer.text
        lines = access_log.read_text().splitlines()[start:]
        return [m.group(1) for line in lines if (m := UPSTREAM.search(line))]

    assert set(upstreams_of(8)) == {a, b}  # round robin over both, through TLS
    status = httpx.get(f"{admin}/status", timeout=10).json()
    assert [(s["address"], s["up"]) for s in status["servers"]] == [(a, True), (b, True)]
    assert status["nginx"]["reloaded_at"] is not None
    assert status["nginx"]["checksum"] is not None

    change("remove_server", b)
    assert set(upstreams_of(6)) == {a}

    change("add_server", b)
    assert set(upstreams_of(8)) == {a, b}
    fleet.procs[b].send_signal(signal.SIGKILL)
    fleet.procs[b].wait(30)

    def b_down() -> bool:
        servers = httpx.get(f"{admin}/status", timeout=10).json()["servers"]
        return {s["address"]: s["up"] for s in servers} == {a: True, b: False}
    _wait(b_down, "the status to report the killed server down")
    # NGINX passes what it sent to the dead server on to the live one: no request fails
    tried = upstreams_of(6)
    assert {t.split(", ")[-1] for t in tried} == {a}, tried
