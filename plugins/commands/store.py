"""`baseshift backup`, `restore` and `retention`: the state store copied, replaced and
pruned, by stores that can (the `Backups` and `Retention` abilities)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from baseshift.core.capabilities import Backups, Retention
from baseshift.core.command import Command, ExitCode, existing_file
from baseshift.core.errors import ConfigError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.protocols import StateStore

from .backups import record_backup
from .common import app_for


async def cmd_backup(args: argparse.Namespace) -> int:
    """`baseshift backup FILE`: a consistent copy of the state (and template) store."""
    store = app_for(args).store
    runs = await _backups(store, "backup").backup(Path(args.file))
    await record_backup(store, runs, Path(args.file))
    print(f"backed up {runs} run(s) to {args.file}")
    return ExitCode.OK


async def cmd_restore(args: argparse.Namespace) -> int:
    """`baseshift restore FILE`: replace the store's content with a backup's."""
    if not args.yes:
        print("error: restore replaces every run and template with the backup's; stop the "
              "server first, then add --yes", file=sys.stderr)
        return ExitCode.USAGE
    runs = await _backups(app_for(args).store, "restore").restore(Path(args.file))
    print(f"restored {runs} run(s) from {args.file}")
    return ExitCode.OK


def _backups(store: StateStore, command: str) -> Backups:
    if not isinstance(store, Backups):
        raise ConfigError(f"the {store.name!r} store cannot {command}",
                          hint="backups are made by the store plugin; see docs/configuration.md")
    return store


async def cmd_retention(args: argparse.Namespace) -> int:
    """`baseshift retention --older-than DAYS`: retire old runs, by whole months."""
    if not (args.yes or args.dry_run):
        print("error: retention deletes old runs for good (archive them with --archive DIR); "
              "look first with --dry-run, then add --yes", file=sys.stderr)
        return ExitCode.USAGE
    store = app_for(args).store
    if not isinstance(store, Retention):
        raise ConfigError(f"the {store.name!r} store has no retention",
                          hint="retention works by time partitions: use store = \"postgres\"")
    cutoff = time.time() - args.older_than * 86400
    archive = Path(args.archive) if args.archive else None
    await store.open()
    try:
        retired = await store.retire(cutoff, archive, args.dry_run)
    finally:
        await store.close()
    for item in retired:
        where = f" -> {item.archive}" if item.archive else ""
        print(f"{item.partition}: {item.runs} run(s), {item.action}{where}")
    if not retired:
        print(f"nothing to retire: no month of runs ends more than {args.older_than:g} days ago")
    return ExitCode.OK


def _retention_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--older-than", type=_days, required=True, metavar="DAYS",
                   help="retire the months of runs that ended more than DAYS days ago")
    p.add_argument("--archive", metavar="DIR",
                   help="first write each month's runs, jobs and attempts as JSON Lines here")
    p.add_argument("--dry-run", action="store_true", help="only show what would be retired")
    p.add_argument("--yes", action="store_true", help="confirm: old runs are deleted")


def _days(text: str) -> float:
    try:
        value = float(text.removesuffix("d"))
    except ValueError:
        value = -1
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (e.g. 180)")
    return value


def _backup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the backup file to write (must not exist)")


def _restore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", type=existing_file,
                   help="a file written by `baseshift backup`")
    p.add_argument("--yes", action="store_true",
                   help="confirm: the current runs and templates are replaced")


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("backup", "copy the runs and templates to a file, safely while the server "
                "runs", _backup_args, cmd_backup),
        Command("restore", "replace the runs and templates with a backup's (server stopped)",
                _restore_args, cmd_restore),
        Command("retention", "retire old runs by whole months (PostgreSQL), archiving them "
                "first if asked", _retention_args, cmd_retention),
    ]
