"""The `baseshift` command line (also `python -m baseshift`)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

from .errors import BaseShiftError, ConfigError, DSLError, InputError
from .settings import Settings


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2


Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int] | int]


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", metavar="DIR",
                        help="where runs are stored (env BASESHIFT_DATA_DIR; default ./.baseshift)")
    common.add_argument("--store", metavar="NAME",
                        help="state store backend: sqlite (default), memory or postgres "
                        "(env BASESHIFT_STORE; postgres also needs BASESHIFT_DATABASE_URL)")
    parser = argparse.ArgumentParser(
        prog="baseshift",
        description="Base Shift: write workflows as .bsw files, check them, run them.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for spec in (*commands.COMMANDS, *_plugin_commands(commands.COMMANDS)):
        p = sub.add_parser(spec.name, help=spec.help, description=spec.help,
                           parents=[common])
        spec.configure(p)
        p.set_defaults(handler=spec.handler)
    return parser


def _plugin_commands(builtin: Sequence[Any]) -> list[Any]:
    from .plugins import make_plugin_manager, plugin_commands

    settings = Settings.from_env()
    pm = make_plugin_manager(load_entrypoints=settings.load_entrypoints,
                             blocked=settings.disabled_plugins)
    found = plugin_commands(pm)
    taken = {c.name for c in builtin} & set(found)
    if taken:
        raise ConfigError(f"a plugin redefines the builtin command(s): {', '.join(sorted(taken))}")
    return list(found.values())


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the common flags and the environment; keywords naming a Settings field
    (such as `workflows_dir`) set it, the rest become plugin `extra` settings."""
    fields = {k: extra.pop(k) for k in list(extra) if k in Settings.__dataclass_fields__}
    return Settings.from_env(data_dir=getattr(args, "data_dir", None),
                             store=getattr(args, "store", None), extra=extra, **fields)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: running attempts are stopped, state stays resumable."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command, map errors to messages and exit codes."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build_parser().parse_args(argv)
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result)
    except DSLError as exc:
        from .diagnostics import render_all

        if exc.diagnostics:
            sources = _sources(exc.diagnostics)
            print(render_all(exc.diagnostics, sources), file=sys.stderr)  # type: ignore[arg-type]
        else:
            print(f"error: {exc.message}", file=sys.stderr)
        return ExitCode.FAILED
    except BaseShiftError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return ExitCode.USAGE if isinstance(exc, InputError | ConfigError) else ExitCode.FAILED
    except BrokenPipeError:  # `baseshift runs | head`: the reader left; exit as `yes | head` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt as exc:
        print("interrupted; unfinished runs can be continued with `baseshift resume`",
              file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


def _sources(diagnostics: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in diagnostics:
        path = Path(d.path)
        if d.path not in out and path.is_file():
            try:
                out[d.path] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                pass
    return out


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def package_version() -> str:
    """The installed version of Base Shift ("unknown" when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("baseshift")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
