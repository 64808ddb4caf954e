"""`baseshift runs`, `show`, `resume`, `cancel` and `retry`: the stored runs, inspected and
steered from a shell."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from baseshift.core.command import Command, ExitCode, print_json, stdout_to_stderr
from baseshift.core.errors import Conflict, InputError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.report import runs_table, snapshot_json, snapshot_text
from baseshift.core.states import RunState

from . import remote
from .common import (
    app_for,
    json_flag,
    load_snapshot,
    local_or_remote,
    opened_store,
    progress_mode,
    report,
    run_id_arg,
    wait_all,
    with_server,
)

if TYPE_CHECKING:
    from baseshift.core.appface import App


async def cmd_resume(args: argparse.Namespace) -> int:
    bs = app_for(args, progress=progress_mode(args))
    with stdout_to_stderr(args.json):
        async with bs:
            resumed = args.run_ids or []
            for run_id in resumed:
                await _resume_one(bs, run_id)
            if not resumed:
                resumed = await _resume_orphans(bs)
            snapshots = await wait_all(bs, resumed)
    if not snapshots:
        print("nothing to resume: no unfinished run is waiting for a process")
        return ExitCode.OK
    return report(snapshots, args.json)


async def _resume_orphans(bs: App) -> list[str]:
    """Resume every unfinished run that no live process is executing."""
    resumed = []
    for run_id in await bs.store.unfinished_runs():
        try:
            await _resume_one(bs, run_id)
            resumed.append(run_id)
        except Conflict as exc:  # another live process is executing it
            print(f"skipped {run_id}: {exc.message}", file=sys.stderr)
    return resumed


async def _resume_one(bs: App, run_id: str) -> None:
    """Through the run service, so that a run waiting behind its run limit stays queued."""
    await load_snapshot(bs.store, run_id)  # NotFound with the `baseshift runs` hint
    await bs.runs.resume(run_id)


def _resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID",
                   help="runs to continue (default: every unfinished run)")
    json_flag(p, "the finished runs")


async def cmd_retry(args: argparse.Namespace) -> int:
    if args.detach:
        raise InputError("--detach is for a run on a server: give --server URL too")
    bs = app_for(args, progress=progress_mode(args))
    with stdout_to_stderr(args.json):
        async with bs:
            await load_snapshot(bs.store, args.run_id)  # NotFound with the `runs` hint
            await bs.runs.retry(args.run_id)  # Conflict while its run limit has no place
            snapshots = await wait_all(bs, [args.run_id])
    return report(snapshots, args.json)


def _retry_args(p: argparse.ArgumentParser) -> None:
    run_id_arg(p)
    json_flag(p, "the finished run")
    p.add_argument("--detach", action="store_true",
                   help="with --server: return once the run is reopened")


async def cmd_cancel(args: argparse.Namespace) -> int:
    bs = app_for(args)
    async with bs:
        await load_snapshot(bs.store, args.run_id)  # NotFound with the `baseshift runs` hint
        await bs.runs.cancel(args.run_id)  # a process executing it notices within 0.5 s
        print(f"run {args.run_id} CANCELLED")
        return ExitCode.OK


async def cmd_runs(args: argparse.Namespace) -> int:
    states = [RunState(s) for s in args.state] if args.state else None
    async with opened_store(args) as store:
        runs = await store.list_runs(limit=args.limit, workflow=args.workflow, states=states)
    if args.json:
        from baseshift.core.report import run_json

        print_json([run_json(r) for r in runs])
    else:
        print(runs_table(runs))
    return ExitCode.OK


def _runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    p.add_argument("--workflow", help="only runs of this workflow")
    p.add_argument("--state", action="append", choices=[s.value for s in RunState],
                   help="only runs in this state (repeatable)")
    json_flag(p, "the runs")


async def cmd_show(args: argparse.Namespace) -> int:
    async with opened_store(args) as store:
        snapshot = await load_snapshot(store, args.run_id)
    if args.json:
        print_json(snapshot_json(snapshot))
    else:
        print(snapshot_text(snapshot, logs=args.logs))
    return ExitCode.OK


def _show_args(p: argparse.ArgumentParser) -> None:
    run_id_arg(p)
    p.add_argument("--logs", action="store_true", help="include the attempts' logs")
    json_flag(p, "the run with its jobs and attempts")


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("runs", "list recent runs", with_server(_runs_args),
                local_or_remote(cmd_runs, remote.runs)),
        Command("show", "show one run: jobs, attempts, outputs", with_server(_show_args),
                local_or_remote(cmd_show, remote.show)),
        Command("resume", "continue runs interrupted by a crash or stop", _resume_args,
                cmd_resume),
        Command("cancel", "cancel an unfinished run", with_server(run_id_arg),
                local_or_remote(cmd_cancel, remote.cancel)),
        Command("retry", "rerun a failed run's failed jobs, keeping the successful ones",
                with_server(_retry_args), local_or_remote(cmd_retry, remote.retry)),
    ]
