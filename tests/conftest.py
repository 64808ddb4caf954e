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

from baseshift.core.app import BaseShift
from baseshift.core.settings import Settings

REPO = Path(__file__).resolve().parent.parent


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
            timeout: float = 120) -> CliResult:
        full_env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "cli-data"),
                    **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "baseshift", *args], cwd=cwd or REPO,
                              env=full_env, capture_output=True, text=True, timeout=timeout)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


PG_SERVER = os.environ.get("BASESHIFT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL server the tests use (this machine's; `.ci/run` starts it when down)."""


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
