"""The `baseshift` command line (also `python -m baseshift`)."""
from __future__ import annotations

import argparse
import inspect
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..audit import Acting, acting_as
from ..command import ExitCode
from ..errors import BaseShiftError, ConfigError, DSLError, InputError


def build_parser(*, with_commands: bool = True) -> argparse.ArgumentParser:
    """The command line. `with_commands=False` leaves out the subcommands (and so every
    plugin's import): enough to answer `--version`."""
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
    if not with_commands:
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for spec in _commands():
        p = sub.add_parser(spec.name, help=spec.help, description=spec.help,
                           parents=[common])
        spec.configure(p)
        p.set_defaults(handler=spec.handler)
    return parser


def _asks_version(words: Sequence[str]) -> bool:
    """Whether `--version` comes before any command (argparse answers it and exits there)."""
    for word in words:
        if word == "--version":
            return True
        if not word.startswith("-"):
            return False
    return False


def _commands() -> list[Any]:
    """Every command, from the plugins (the builtin ones are plugins too: `plugins/commands/`,
    `baseshift serve`, `worker`, `templates`), as the environment enables them."""
    from ..plugins import make_plugin_manager, plugin_commands
    from ..settings import Settings

    settings = Settings.from_env()
    pm = make_plugin_manager(load_entrypoints=settings.load_entrypoints,
                             blocked=settings.disabled_plugins)
    return list(plugin_commands(pm).values())


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: running attempts are stopped, state stays resumable."""


_terminated: list[int] = []
"""The SIGTERMs received (for the exit code: 143, not Ctrl-C's 130)."""


def _on_sigterm(signum: int, frame: object) -> None:
    """Stop as Ctrl-C stops. While an event loop runs, asyncio's own SIGINT handler cancels
    the command's task, so running attempts are cancelled and their processes killed; a
    KeyboardInterrupt raised here instead could land anywhere, even between the fork of a
    shell step and its bookkeeping, and leave the process running. Where Ctrl-C itself
    would do nothing (SIGINT ignored, as for a background job) it raises at once."""
    _terminated.append(signum)
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        raise Terminated()
    signal.raise_signal(signal.SIGINT)


def _os_user() -> str:
    """Who runs the command, as audit entries of its changes name them."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return str(os.getuid())


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command, map errors to messages and exit codes."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        version_only = _asks_version(words)
        if not version_only:
            from ..console import configure_console
            from .logs import configure_logging, log_format

            if log_format(default="console") == "json":  # a command's warnings
                configure_logging("json")
            else:  # as plain text, without importing structlog: a quick command stays quick
                configure_console()
        args = build_parser(with_commands=not version_only).parse_args(words)
        with acting_as(Acting(f"cli:{_os_user()}")):  # a server's handler acts as the server
            result = args.handler(args)
            if inspect.iscoroutine(result):
                import asyncio

                result = asyncio.run(result)
        return int(result)
    except DSLError as exc:
        from ..diagnostics import render_all

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
        return 143 if isinstance(exc, Terminated) or _terminated else 130


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


def package_version() -> str:
    """The version of Base Shift (pyproject.toml reads it from `baseshift.core.version`)."""
    from ..version import __version__

    return __version__


if __name__ == "__main__":
    raise SystemExit(main())
