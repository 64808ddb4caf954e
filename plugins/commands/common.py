"""What the builtin commands share: their common arguments, the application or store a
command works with, and how a command that runs workflows waits for and reports them."""
from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from baseshift.core.capabilities import Erasure
from baseshift.core.command import ExitCode, existing_file, existing_path, print_json, settings_from
from baseshift.core.errors import Gone, NotFound
from baseshift.core.records import RunSnapshot
from baseshift.core.report import format_time, snapshot_json, snapshot_text
from baseshift.core.states import RunState
from baseshift.plugins.client.remote import remote_for, server_options

if TYPE_CHECKING:
    from baseshift.core.app.application import BaseShift
    from baseshift.core.protocols import StateStore
    from baseshift.plugins.client.http import Remote

LocalHandler = Callable[[argparse.Namespace], Coroutine[Any, Any, int] | int]
RemoteHandler = Callable[["Remote", argparse.Namespace], int]


def paths_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", type=existing_path,
                   help=".bsw workflow files, .template.yaml template files, or folders")


def file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", type=existing_file, help="the .bsw workflow file")


def run_id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, as `baseshift runs` shows")


def json_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def with_server(configure: Callable[[argparse.ArgumentParser], None]
                ) -> Callable[[argparse.ArgumentParser], None]:
    """A command's arguments, and `--server`/`--ca-file` (plugins/client/remote.py)."""
    def both(p: argparse.ArgumentParser) -> None:
        configure(p)
        server_options(p)
    return both


def local_or_remote(local: LocalHandler, remote: RemoteHandler) -> LocalHandler:
    """A handler that works through the chosen server's API when there is one (`--server`,
    $BASESHIFT_SERVER), else on the local store as before."""
    def handler(args: argparse.Namespace) -> Coroutine[Any, Any, int] | int:
        client = remote_for(args)
        if client is None:
            return local(args)
        with client:
            return remote(client, args)
    return handler


def app_for(args: argparse.Namespace, **extra: Any) -> BaseShift:
    """The application a command works with, from its flags (see `settings_from`).

    Imported here, not at the top: `baseshift --version` and `--help` load this module and
    should not pay for the application's imports."""
    from baseshift.core.app.application import BaseShift

    return BaseShift(settings_from(args, **extra))


@asynccontextmanager
async def opened_store(args: argparse.Namespace) -> AsyncIterator[StateStore]:
    """Only the state store, open: what a command that reads or copies runs needs (no
    engine, no other backend, no plugin's start-up)."""
    store = app_for(args).store
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def load_snapshot(store: StateStore, run_id: str) -> RunSnapshot:
    """The stored run, or NotFound with a hint."""
    snapshot = await store.load_run(run_id)
    if snapshot is None:
        erased = await store.tombstone(run_id) if isinstance(store, Erasure) else None
        if erased is not None:
            raise Gone(f"run '{run_id}' of workflow '{erased.workflow}' was erased by "
                       f"{erased.erased_by} at {format_time(erased.erased_at)}: its data "
                       "is gone for good")
        raise NotFound(f"run '{run_id}' not found", hint="`baseshift runs` lists runs")
    return snapshot


def progress_mode(args: argparse.Namespace) -> str | None:
    if getattr(args, "json", False):
        return None
    return "bar" if sys.stderr.isatty() else "lines"


async def wait_all(bs: BaseShift, run_ids: list[str]) -> list[RunSnapshot]:
    """Wait for the runs this process executes to finish, and load every run (printed once
    the progress display is gone). A run that is not executing here was queued or refused
    by its workflow's run limit: it is reported as stored."""
    for run_id in run_ids:
        if run_id in bs.engine.runs:
            await bs.engine.wait(run_id)
        else:
            print(f"run {run_id} was not started here: its workflow's run limit queued or "
                  "refused it (`baseshift show` follows it)", file=sys.stderr)
    return [await load_snapshot(bs.store, r) for r in run_ids]


def report(snapshots: list[RunSnapshot], as_json: bool) -> int:
    for snap in snapshots:
        if as_json:
            print_json(snapshot_json(snap))
        else:
            print(snapshot_text(snap))
    ok = all(s.run.state is RunState.COMPLETED for s in snapshots)
    return ExitCode.OK if ok else ExitCode.FAILED
