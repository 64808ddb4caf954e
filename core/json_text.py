"""Reading a step's printed or returned text as JSON, strictly (NaN and Infinity refused);
writing JSON compactly, and JSON files at once."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, NoReturn

_COMPACT = json.JSONEncoder(separators=(",", ":"))


def dumps_compact(value: Any) -> str:
    """JSON text without spaces, as the stores write it. One prebuilt encoder: `json.dumps`
    with non-default options builds a new one per call, which shows on the write path."""
    return _COMPACT.encode(value)


def loads_strict(text: str) -> Any:
    """`json.loads`, refusing the NaN/Infinity extensions; ValueError when it is not JSON."""
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


NOT_JSON = object()
"""What `output_json` returns for text that holds no JSON value."""


def output_json(text: str) -> Any:
    """A step's printed output as JSON: the whole text, else its last non-empty line if that
    is an object or array; `NOT_JSON` when neither is (the shell and kubernetes executors
    read output the same way)."""
    stripped = text.strip()
    if not stripped:
        return NOT_JSON
    try:
        return loads_strict(stripped)
    except ValueError:
        pass
    last = stripped.rsplit("\n", 1)[-1].strip()
    if last[:1] not in ("{", "["):
        return NOT_JSON
    try:
        return loads_strict(last)
    except ValueError:
        return NOT_JSON


def write_json_file(path: Path, value: Any) -> None:
    """Replace `path` with `value` as indented JSON at once: a temporary file in the same
    folder (mode 0600, private to its owner), flushed to disk, then renamed over it, so a
    reader sees the old file or the new one, never half of one."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
