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
