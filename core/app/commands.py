"""The subcommands of `baseshift`: each is a name, a help line, its arguments and a handler."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..capabilities import Backups, Retention
from ..command import (
    Command,
    ExitCode,
    existing_file,
    existing_path,
    print_json,
    settings_from,
    stdout_to_stderr,
)
from ..diagnostics import render_all
from ..errors import ConfigError, Conflict, InputError, NotFound
from ..protocols import StateStore
from ..records import RunSnapshot
from ..report import runs_table, snapshot_json, snapshot_text
from ..states import RunState

if TYPE_CHECKING:
    from ..compiled import Compiled
    from .application import BaseShift


def _paths(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", type=existing_path,
                   help=".bsw workflow files, .template.yaml template files, or folders")


def _file(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", type=existing_file, help="the .bsw workflow file")


def _run_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, as `baseshift runs` shows")


def _json_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def app_for(args: argparse.Namespace, **extra: Any) -> BaseShift:
    """The application a command works with, from its flags (see `settings_from`).

    Imported here, not at the top: `baseshift --version` and `--help` load this module and
    should not pay for the application's imports."""
    from .application import BaseShift

    return BaseShift(settings_from(args, **extra))


# ------------------------------------------------------------------ check / plan


def collect_files(paths: list[str]) -> dict[Path, list[Path]]:
    """The files to report, by the folder they are loaded with, in the order given.

    A folder stands for the workflow and template files in it and in its sub-folders; each
    folder is loaded on its own (`core/app/loader.py`), as `run` and the server load it."""
    from .loader import folder_files

    by_folder: dict[Path, list[Path]] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for folder in sorted({path, *(p for p in path.rglob("*") if p.is_dir())}):
                by_folder.setdefault(folder, []).extend(folder_files(folder))
        elif path.exists():
            by_folder.setdefault(path.parent, []).append(path)
        else:
            raise NotFound(f"no such file or folder: {raw}")
    return {folder: list(dict.fromkeys(files)) for folder, files in by_folder.items() if files}


def check_files(bs: BaseShift, paths: list[str]) -> list[Compiled]:
    """Each file named (or found in a folder named) checked with its folder's other files."""
    from .loader import load_folder

    results: list[Compiled] = []
    for folder, files in collect_files(paths).items():
        loaded = load_folder(bs, folder, include=files)
        results.extend(loaded.file(f) for f in files)
    return results


def cmd_check(args: argparse.Namespace) -> int:
    bs = app_for(args)
    results = check_files(bs, args.paths)
    if not results:
        raise NotFound(f"no .bsw or .template.yaml files in {', '.join(args.paths)}")
    diagnostics = [d for c in results for d in c.diagnostics]
    if args.json:
        print_json([{"path": c.path, "ok": c.ok, "workflow": c.plan.name if c.plan else None,
                     "diagnostics": [d.to_json() for d in c.diagnostics]} for c in results])
    elif diagnostics:
        print(render_all(diagnostics, {c.path: c.source for c in results}), file=sys.stderr)
    failed = [c for c in results if not c.ok]
    if args.json:
        pass
    elif failed:
        print(f"check failed: {len(failed)} of {len(results)} files have errors",
              file=sys.stderr)
    else:
        workflows = sum(c.plan is not None for c in results)
        templates = sum(len(c.templates) for c in results)
        print(f"{_count(len(results), 'file')} ok ({_count(workflows, 'workflow')}, "
              f"{_count(templates, 'template')})")
    return ExitCode.FAILED if failed else ExitCode.OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_plan(args: argparse.Namespace) -> int:
    from baseshift.dsl import render_plan

    plan = app_for(args).load_workflow(args.file)
    print(render_plan(plan, args.format))
    return ExitCode.OK


def _plan_args(p: argparse.ArgumentParser) -> None:
    _file(p)
    p.add_argument("--format", choices=("text", "json", "dot", "mermaid"), default="text",
                   help="output format (default: text)")


# ------------------------------------------------------------------ run and friends


def _run_args(p: argparse.ArgumentParser) -> None:
    _file(p)
    p.add_argument("--input", "-i", action="append", default=[], metavar="KEY=VALUE",
                   help="an input value, converted to the declared type (lists and objects "
                   "as JSON); repeatable")
    p.add_argument("--input-file", metavar="FILE", type=existing_file,
                   help="a JSON object of inputs")
    _json_flag(p, "the finished run (id, status, jobs, attempts, timings, outputs)")


def parse_inputs(pairs: list[str], input_file: str | None) -> dict[str, Any]:
    """Inputs from --input-file, then --input KEY=VALUE pairs (which win)."""
    values: dict[str, Any] = {}
    if input_file:
        values.update(_read_input_file(input_file))
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--input {pair!r} is not KEY=VALUE")
        values[key] = raw  # typed later against the declared input (numbers, JSON lists...)
    return values


def _read_input_file(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read --input-file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"--input-file {path} must hold a JSON object")
    return data


def _progress_mode(args: argparse.Namespace) -> str | None:
    if getattr(args, "json", False):
        return None
    return "bar" if sys.stderr.isatty() else "lines"


async def _wait_all(bs: BaseShift, run_ids: list[str]) -> list[RunSnapshot]:
    """Wait for runs to finish and load them (printed once the progress display is gone)."""
    records = [await bs.engine.wait(r) for r in run_ids]
    return [await load_snapshot(bs, r.id) for r in records]


def _report(snapshots: list[RunSnapshot], as_json: bool) -> int:
    for snap in snapshots:
        if as_json:
            print_json(snapshot_json(snap))
        else:
            print(snapshot_text(snap))
    ok = all(s.run.state is RunState.COMPLETED for s in snapshots)
    return ExitCode.OK if ok else ExitCode.FAILED


async def cmd_run(args: argparse.Namespace) -> int:
    inputs = parse_inputs(args.input, args.input_file)
    bs = app_for(args, progress=_progress_mode(args))
    plan = bs.load_workflow(Path(args.file).resolve())
    with stdout_to_stderr(args.json):
        async with bs:
            run_id = await bs.engine.submit(plan, inputs)
            snapshots = await _wait_all(bs, [run_id])
    return _report(snapshots, args.json)


async def cmd_resume(args: argparse.Namespace) -> int:
    bs = app_for(args, progress=_progress_mode(args))
    with stdout_to_stderr(args.json):
        async with bs:
            resumed = args.run_ids or []
            for run_id in resumed:
                await _resume_one(bs, run_id, retry=False)
            if not resumed:
                resumed = await _resume_orphans(bs)
            snapshots = await _wait_all(bs, resumed)
    if not snapshots:
        print("nothing to resume: no unfinished run is waiting for a process")
        return ExitCode.OK
    return _report(snapshots, args.json)


async def _resume_orphans(bs: BaseShift) -> list[str]:
    """Resume every unfinished run that no live process is executing."""
    resumed = []
    for run_id in await bs.store.unfinished_runs():
        try:
            await _resume_one(bs, run_id, retry=False)
            resumed.append(run_id)
        except Conflict as exc:  # another live process is executing it
            print(f"skipped {run_id}: {exc.message}", file=sys.stderr)
    return resumed


async def load_snapshot(bs: BaseShift, run_id: str) -> RunSnapshot:
    """The stored run, or NotFound with a hint."""
    snapshot = await bs.store.load_run(run_id)
    if snapshot is None:
        raise NotFound(f"run '{run_id}' not found", hint="`baseshift runs` lists runs")
    return snapshot


async def _resume_one(bs: BaseShift, run_id: str, *, retry: bool) -> None:
    snapshot = await load_snapshot(bs, run_id)
    plan = bs.plan_for_run(snapshot.run, snapshot.jobs)
    await bs.engine.resume(plan, run_id, retry=retry)


def _resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID",
                   help="runs to continue (default: every unfinished run)")
    _json_flag(p, "the finished runs")


async def cmd_retry(args: argparse.Namespace) -> int:
    bs = app_for(args, progress=_progress_mode(args))
    with stdout_to_stderr(args.json):
        async with bs:
            await _resume_one(bs, args.run_id, retry=True)
            snapshots = await _wait_all(bs, [args.run_id])
    return _report(snapshots, args.json)


def _retry_args(p: argparse.ArgumentParser) -> None:
    _run_id(p)
    _json_flag(p, "the finished run")


async def cmd_cancel(args: argparse.Namespace) -> int:
    bs = app_for(args)
    async with bs:
        await load_snapshot(bs, args.run_id)  # NotFound with the `baseshift runs` hint
        await bs.runs.cancel(args.run_id)  # a process executing it notices within 0.5 s
        print(f"run {args.run_id} CANCELLED")
        return ExitCode.OK


# ------------------------------------------------------------------ inspecting


async def cmd_runs(args: argparse.Namespace) -> int:
    states = [RunState(s) for s in args.state] if args.state else None
    bs = app_for(args)
    async with bs:
        runs = await bs.store.list_runs(limit=args.limit, workflow=args.workflow, states=states)
    if args.json:
        from ..report import run_json

        print_json([run_json(r) for r in runs])
    else:
        print(runs_table(runs))
    return ExitCode.OK


def _runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    p.add_argument("--workflow", help="only runs of this workflow")
    p.add_argument("--state", action="append", choices=[s.value for s in RunState],
                   help="only runs in this state (repeatable)")
    _json_flag(p, "the runs")


async def cmd_show(args: argparse.Namespace) -> int:
    bs = app_for(args)
    async with bs:
        snapshot = await load_snapshot(bs, args.run_id)
    if args.json:
        print_json(snapshot_json(snapshot))
    else:
        print(snapshot_text(snapshot, logs=args.logs))
    return ExitCode.OK


def _show_args(p: argparse.ArgumentParser) -> None:
    _run_id(p)
    p.add_argument("--logs", action="store_true", help="include the attempts' logs")
    _json_flag(p, "the run with its jobs and attempts")


async def cmd_backup(args: argparse.Namespace) -> int:
    """`baseshift backup FILE`: a consistent copy of the state (and template) store."""
    runs = await _backups(app_for(args).store, "backup").backup(Path(args.file))
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


def cmd_config(args: argparse.Namespace) -> int:
    """`baseshift config show`: the effective settings, secrets masked."""
    import dataclasses
    import os

    from ..config import config_path, masked

    settings = settings_from(args)
    path = config_path(os.environ)
    shown = masked({f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})
    if args.json:
        print_json({"config_file": str(path) if path else None, "settings": shown})
        return ExitCode.OK
    print(f"# configuration file: {path or 'none (defaults, environment and flags)'}")
    for key, value in shown.items():
        print(f"{key} = {json.dumps(value)}")
    return ExitCode.OK


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["show"], help="show: print the effective settings")
    _json_flag(p, "the settings")


def cmd_plugins(args: argparse.Namespace) -> int:
    from ..plugins import describe_plugins

    bs = app_for(args)
    infos = describe_plugins(bs.pm)
    if args.json:
        print_json([{"name": i.name, "module": i.module, "distribution": i.distribution,
                     "version": i.version, "hooks": list(i.hooks)} for i in infos])
        return ExitCode.OK
    for info in infos:
        origin = f"{info.distribution} {info.version}" if info.distribution else "builtin"
        print(f"{info.name}  ({origin})\n    hooks: {', '.join(info.hooks) or '-'}")
    print(f"executors: {', '.join(sorted(bs.executor_classes))}")
    return ExitCode.OK


def _check_args(p: argparse.ArgumentParser) -> None:
    _paths(p)
    _json_flag(p, "the diagnostics")


COMMANDS: tuple[Command, ...] = (
    Command("check", "check workflow and template files for errors without running anything",
            _check_args,
            cmd_check),
    Command("plan", "show the DAG a workflow compiles to", _plan_args, cmd_plan),
    Command("run", "run a workflow here and wait for it to finish", _run_args, cmd_run),
    Command("runs", "list recent runs", _runs_args, cmd_runs),
    Command("show", "show one run: jobs, attempts, outputs", _show_args, cmd_show),
    Command("resume", "continue runs interrupted by a crash or stop", _resume_args, cmd_resume),
    Command("cancel", "cancel an unfinished run", _run_id, cmd_cancel),
    Command("retry", "rerun a failed run's failed jobs, keeping the successful ones",
            _retry_args, cmd_retry),
    Command("backup", "copy the runs and templates to a file, safely while the server runs",
            _backup_args, cmd_backup),
    Command("restore", "replace the runs and templates with a backup's (server stopped)",
            _restore_args, cmd_restore),
    Command("retention", "retire old runs by whole months (PostgreSQL), archiving them first "
            "if asked", _retention_args, cmd_retention),
    Command("config", "show the effective configuration (file, environment, flags), secrets "
            "masked", _config_args, cmd_config),
    Command("plugins", "list loaded plugins and the hooks each implements",
            lambda p: _json_flag(p, "the plugins"), cmd_plugins),
)
