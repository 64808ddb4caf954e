"""Shared fixtures: application factory, ad-hoc plugins, CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Once per run (in the controller, not in each xdist worker): compile the sources to
    __pycache__ (gitignored). Where PYTHONDONTWRITEBYTECODE is set, nothing else writes
    them, and each of the ~250 `python -m baseshift` processes the tests start would compile
    every module it imports again, a sixth of its start-up time."""
    if hasattr(config, "workerinput") or not sys.dont_write_bytecode:
        return
    import compileall

    for name in ("core", "dsl", "plugins", "web"):
        compileall.compile_dir(REPO / name, quiet=1, workers=1)
    for name in ("__main__.py", "server.py"):
        compileall.compile_file(REPO / name, quiet=1)


START_FIRST = ("tests/dsl/test_dsl_parser.py::test_grammar_builds_strict_lalr",)
"""The longest tests, started before all others."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, hand out the longest tests first (START_FIRST, then those marked
    `slow`), so that none of them starts last and keeps one worker busy while the others
    are idle. A serial run (`-n 0`, `-p no:xdist`) keeps pytest's order."""
    if not hasattr(config, "workerinput"):
        return
    items.sort(key=lambda item: 0 if item.nodeid in START_FIRST
               else 1 if item.get_closest_marker("slow") else 2)


@pytest.fixture
def make_baseshift(tmp_path: Path) -> Callable[..., Any]:
    """`async with make_baseshift(store="memory", plugins=[...]) as bs:` — a started app
    with a private data dir and no pip-installed plugins."""

    @asynccontextmanager
    async def factory(*, plugins: tuple[object, ...] = (), **settings: Any
                      ) -> AsyncIterator[BaseShift]:
        settings.setdefault("store", "memory")
        settings.setdefault("data_dir", tmp_path / "data")
        bs = BaseShift(Settings(load_entrypoints=False, **settings), plugins=plugins)
        async with bs:
            yield bs

    return factory


def source_copy(source: Path, target: Path) -> Path:
    """A copy of the project at `source` (without VCS data, caches and build output) at
    `target`, to build a distribution from: pip builds in the source folder (build/,
    *.egg-info), and two builds of one folder at once, as parallel test processes would
    do, break each other's files."""
    import shutil

    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        ".mypy_cache", ".ruff_cache"))
    return target


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """Run `python -m baseshift ARGS` in a subprocess, as a user would, with a private
    data dir; returns exit code and output."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, input: str | None = None) -> CliResult:
        full_env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "cli-data"),
                    **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "baseshift", *args], cwd=cwd or REPO,
                              env=full_env, capture_output=True, text=True, timeout=timeout,
                              input=input if input is not None else "")
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


PG_SERVER = os.environ.get("BASESHIFT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL server the tests use (this machine's; `tests/run` starts it when down)."""


def fresh_pg_schema() -> str:
    """A new, empty schema on the test server; returns the `database_url` that uses it."""
    import uuid

    import psycopg

    schema = f"bs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
    return f"{PG_SERVER}?schema={schema}"


def drop_pg_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


@pytest.fixture
def pg_url() -> Any:
    """`database_url` of a fresh schema on the real PostgreSQL, dropped after the test."""
    url = fresh_pg_schema()
    yield url
    drop_pg_schema(url)


_PORT_LOCKS: list[Any] = []
"""Open lock files of the ports this process reserved; closing them (at exit) frees them."""


def stop_process(proc: subprocess.Popen[Any], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds: a server process a test started."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, reserved for this process: no other
    test process on this machine (another xdist worker, another pytest run) gets it.

    Ports come from below the kernel's ephemeral range, so no `bind(("127.0.0.1", 0))` and no
    outgoing connection (to PostgreSQL, Redis, ...) is given it in the time between this call
    and the server binding it; a lock file under the temporary folder, held until this
    process exits, keeps the other test processes off it. A port also serves as one nothing
    listens on, for "connection refused" tests."""
    import fcntl
    import random
    import socket
    import tempfile

    low, high = _reservable_ports()
    folder = Path(tempfile.gettempdir()) / "baseshift-test-ports"
    folder.mkdir(mode=0o777, exist_ok=True)
    start = random.randrange(low, high)
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        handle = open(folder / f"{port}.lock", "a")  # kept open: it is the reservation
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()  # another test process holds it
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # something else uses it (or it is still in TIME_WAIT)
                handle.close()
                continue
        _PORT_LOCKS.append(handle)
        return port
    raise RuntimeError(f"no free port between {low} and {high}")


def _reservable_ports() -> tuple[int, int]:
    """Ports [low, high) the kernel never hands out by itself: below (or else above) its
    ephemeral range."""
    try:
        first, last = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        first, last = 32768, 60999  # Linux's default
    if first > 20000:
        return 10000, min(first, 30000)
    if last < 55000:
        return last + 1, 65536
    raise RuntimeError(f"the ephemeral port range {first}-{last} leaves no ports to reserve")
