"""Reading a step's printed or returned text as JSON, strictly (NaN and Infinity refused);
writing JSON compactly, and JSON files at once; finding and replacing lone UTF-16 surrogates,
the text that is not Unicode."""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from .errors import InputError

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


_SURROGATE = re.compile("[\ud800-\udfff]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def has_surrogate(text: str) -> bool:
    """Whether `text` holds a lone UTF-16 surrogate (a `\\ud800` JSON escape, or bytes that
    were not UTF-8 read with `surrogateescape`): text that cannot be written as UTF-8."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def replace_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, for what is shown or sent."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def surrogate_path(value: Any, name: str = "") -> str | None:
    """The JSON path (`inputs.tags[2]`, after `name`) of the first string or key in a decoded
    JSON value that holds a lone surrogate; None when there is none. A path never holds a
    surrogate itself (such a key is written escaped), so it can go into any message."""
    stack: list[tuple[Any, str]] = [(value, name)]
    while stack:  # a loop, not recursion: json.loads accepts nesting deeper than Python's stack
        item, path = stack.pop()
        if type(item) is str:
            if has_surrogate(item):
                return path or "$"
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if type(key) is str and has_surrogate(key):
                    return _child(path, key)
                stack.append((child, _child(path, key)))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def _child(path: str, key: Any) -> str:
    if type(key) is str and _NAME.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(str(key))}]"


def surrogate_message(path: str) -> str:
    """How a refusal of a lone surrogate at `path` reads, wherever it is refused."""
    return (f"{path} holds text that is not valid Unicode (a lone UTF-16 surrogate such as "
            "\\ud800)")


def refuse_surrogates(value: Any, name: str = "") -> None:
    """InputError (422) naming the path of the first lone surrogate in `value`, if any: the
    check every boundary makes before such text could be stored."""
    path = surrogate_path(value, name)
    if path is not None:
        raise InputError(surrogate_message(path),
                         hint="send UTF-8 text; JSON escapes must pair a high surrogate "
                              "with a low one", details={"field": path})


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
