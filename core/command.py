"""What a `baseshift` subcommand is, and the helpers handlers share (builtin or a plugin's).

Kept apart from `cli` (which builds the command line from every command) so that command
modules import this, not the command line that imports them."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .settings import Settings


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2


T = TypeVar("T")
Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int] | int]


@dataclass(frozen=True)
class Command:
    """A `baseshift` subcommand: builtin, or returned by a plugin's `register_commands`.

    `configure` adds its arguments; `handler` runs it and returns the exit code (it may be a
    coroutine function). Keep the module defining a plugin command light: import what the
    handler needs inside it, since every command line loads every plugin's commands."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Handler


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived command's coroutine on uvloop when it is installed
    (`baseshift[fast]`), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the common flags and the environment; keywords naming a Settings field
    (such as `workflows_dir`) set it, the rest become plugin `extra` settings."""
    from .settings import Settings

    fields = {k: extra.pop(k) for k in list(extra) if k in Settings.__dataclass_fields__}
    return Settings.from_env(data_dir=getattr(args, "data_dir", None),
                             store=getattr(args, "store", None), extra=extra, **fields)


def existing_path(raw: str) -> str:
    """An argparse `type` for a file or folder argument: a path that does not exist is a
    usage error (exit code 2, with the usage line), like any other bad argument."""
    if not os.path.exists(raw):
        raise argparse.ArgumentTypeError(f"no such file or folder: {raw}")
    return raw


def existing_file(raw: str) -> str:
    """An argparse `type` for an argument naming a file to read (see `existing_path`)."""
    existing_path(raw)
    if os.path.isdir(raw):
        raise argparse.ArgumentTypeError(f"{raw} is a folder; give a file")
    return raw


@contextmanager
def stdout_to_stderr(active: bool = True) -> Iterator[None]:
    """While the block runs, whatever reaches file descriptor 1 (a step's subprocess that
    inherited it, a C library) goes to stderr instead: stdout is kept for the one JSON
    document printed after it (`run --json`). A no-op when stdout is not a file descriptor."""
    try:
        fd = sys.stdout.fileno() if active else -1
    except (OSError, ValueError, AttributeError):
        fd = -1
    if fd < 0:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
