"""The garbage collector's settings once an application has started (core/app/heap.py,
`tune_gc`): they are the process's, so each case runs in a process of its own."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import asyncio, gc, json, sys
from pathlib import Path
from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings

async def main() -> None:
    before = gc.get_threshold()
    settings = Settings(store="memory", templates="memory", data_dir=Path(sys.argv[1]),
                        load_entrypoints=False, tune_gc=sys.argv[2] == "on")
    for _ in range(2):  # a second application changes nothing more
        async with BaseShift(settings):
            print(json.dumps({"before": before, "after": gc.get_threshold(),
                              "frozen": gc.get_freeze_count()}), flush=True)
            gc.unfreeze()

asyncio.run(main())
"""


def _probe(tmp_path: Path, tune: str) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), tune],
                          capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("tune", ["on", "off"])
def test_a_started_application_tunes_the_collector_once_unless_told_not_to(
        tmp_path: Path, tune: str) -> None:
    first, second = _probe(tmp_path, tune)
    assert first["before"] == [700, 10, 10]  # CPython's defaults
    if tune == "off":
        assert first["after"] == second["after"] == [700, 10, 10]
        assert first["frozen"] == second["frozen"] == 0
        return
    assert first["after"] == second["after"] == [50_000, 20, 20]
    assert isinstance(first["frozen"], int) and first["frozen"] > 10_000  # modules, plugins
    assert second["frozen"] == 0  # once per process: nothing frozen again
