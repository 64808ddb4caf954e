"""Capture Base Shift's log lines as the JSON formatter writes them (core/app/logrender.py)."""
from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.logrender import make_formatter

Lines = Callable[[], list[dict[str, Any]]]


@contextmanager
def json_log(level: int = logging.INFO) -> Iterator[tuple[Lines, io.StringIO]]:
    """`with json_log() as (lines, raw):` every line of the `baseshift` loggers, as the
    JSON lines of `baseshift serve` (`lines()` parses them; `raw` is the text)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter("json"))
    logger = logging.getLogger("baseshift")
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield (lambda: [json.loads(line) for line in stream.getvalue().splitlines()]), stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


async def line_where(lines: Lines, **fields: Any) -> dict[str, Any]:
    """The first line with these field values, waiting for it (an observer logs it after
    the state it reports is visible)."""
    for _ in range(400):
        found = [x for x in lines() if all(x.get(k) == v for k, v in fields.items())]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no line with {fields}: {lines()}")


def steps_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str],
                 secrets: dict[str, str]) -> Path:
    """A workflows folder holding `files` (a `.bsw` and the Python module of its steps,
    importable), with `secrets` set as `BASESHIFT_SECRET_NAME` variables."""
    for name, value in secrets.items():
        monkeypatch.setenv(f"BASESHIFT_SECRET_{name}", value)
    folder = tmp_path / "flows"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    return folder
