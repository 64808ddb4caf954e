"""Fixtures for scale-out tests: a scheduling application and workers sharing PostgreSQL."""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.plugins.queue.worker_loop import Worker
from baseshift.plugins.storage.pg_connect import PgTarget

FANOUT = """
workflow doubling {
  version "1.0.0"
  input { n: integer }
  job items uses python { with { function: "scaleout_steps:where" } }
  job work uses python {
    needs items
    for i in range(input.n)
    with { function: "scaleout_steps:double", x: i }
  }
  output { doubled: work.output }
}
"""
"""A fan-out over the steps module below: doubles range(n) in parallel jobs."""

STEPS = '''
import asyncio, os, time

def double(x):
    return x * 2

async def nap(seconds):
    await asyncio.sleep(seconds)
    return os.getpid()

def where():
    return os.getpid()
'''


@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "scaleout_steps.py").write_text(STEPS)
    return folder


def on_postgres(pg_url: str, data_dir: Path, **more: Any) -> Settings:
    """Settings of one process on the shared PostgreSQL store (its own data folder)."""
    return Settings(store="postgres", database_url=pg_url, templates="memory",
                    data_dir=data_dir, load_entrypoints=False, **more)


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, workflows: Path) -> Settings:
    """The scheduling side: PostgreSQL store and queue."""
    return on_postgres(pg_url, tmp_path / "data", queue="postgres", workflows_dir=workflows,
                       extra={"queue_postgres": {"lease": 2}})


@pytest.fixture
def start_worker(settings: Settings) -> Callable[..., Any]:
    """`async with start_worker(labels=[...]) as worker:` a Worker in this process."""

    @asynccontextmanager
    async def start(labels: tuple[str, ...] = (), concurrency: int = 8) -> AsyncIterator[Worker]:
        mine = dataclasses.replace(settings, queue="local")
        async with BaseShift(mine) as bs:
            worker = Worker(bs, PgTarget.required(mine), labels=labels,
                            concurrency=concurrency, lease=2)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            try:
                yield worker
            finally:
                stop.set()
                await task

    return start


def load(bs: BaseShift, folder: Path, name: str, source: str) -> Any:
    (folder / f"{name}.bsw").write_text(source)
    return bs.load_workflow(folder / f"{name}.bsw")
