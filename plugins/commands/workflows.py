"""`baseshift check`, `plan` and `run`: workflow files checked, shown as a plan, run here."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baseshift.core.app.logs import configure_logging, log_format, log_format_arg
from baseshift.core.command import (
    Command,
    ExitCode,
    existing_file,
    print_json,
    stdout_to_stderr,
)
from baseshift.core.diagnostics import render_all
from baseshift.core.errors import InputError, NotFound
from baseshift.core.hookspecs import hookimpl
from baseshift.core.json_text import refuse_surrogates
from baseshift.plugins.client.remote import remote_for, server_options

from . import remote
from .common import app_for, file_arg, json_flag, paths_arg, progress_mode, report, wait_all

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.compiled import Compiled


def collect_files(paths: list[str]) -> dict[Path, list[Path]]:
    """The files to report, by the folder they are loaded with, in the order given.

    A folder stands for the workflow and template files in it and in its sub-folders; each
    folder is loaded on its own (`core/app/loader.py`), as `run` and the server load it."""
    from baseshift.core.app.loader import folder_files

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


def check_files(bs: App, paths: list[str]) -> list[Compiled]:
    """Each file named (or found in a folder named) checked with its folder's other files."""
    from baseshift.core.app.loader import load_folder

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
    file_arg(p)
    p.add_argument("--format", choices=("text", "json", "dot", "mermaid"), default="text",
                   help="output format (default: text)")


def _run_args(p: argparse.ArgumentParser) -> None:
    # checked by the handler: with --server it names a workflow the server loaded
    p.add_argument("file", metavar="FILE", help="the .bsw workflow file (with --server: "
                   "the name of a workflow the server has loaded)")
    p.set_defaults(parser_error=p.error)
    p.add_argument("--input", "-i", action="append", default=[], metavar="KEY=VALUE",
                   help="an input value, converted to the declared type (lists and objects "
                   "as JSON); repeatable")
    p.add_argument("--input-file", metavar="FILE", type=existing_file,
                   help="a JSON object of inputs")
    json_flag(p, "the finished run (id, status, jobs, attempts, timings, outputs)")
    detach_flag(p)
    server_options(p)
    log_format_arg(p)


def detach_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach", action="store_true",
                   help="with --server: return once the run started, printing its id")


def parse_inputs(pairs: list[str], input_file: str | None) -> dict[str, Any]:
    """Inputs from --input-file, then --input KEY=VALUE pairs (which win)."""
    values: dict[str, Any] = {}
    if input_file:
        values.update(_read_inputfile_arg(input_file))
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--input {pair!r} is not KEY=VALUE")
        values[key] = raw  # typed later against the declared input (numbers, JSON lists...)
    refuse_surrogates(values)  # bytes that are not UTF-8 reach argv as surrogates
    return values


def _read_inputfile_arg(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read --input-file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"--input-file {path} must hold a JSON object")
    return data


def cmd_run(args: argparse.Namespace) -> Coroutine[Any, Any, int] | int:
    client = remote_for(args)
    if client is not None:
        with client:
            return remote.run(client, args, parse_inputs(args.input, args.input_file))
    try:
        existing_file(args.file)
    except argparse.ArgumentTypeError as exc:
        args.parser_error(f"argument FILE: {exc}")
    no_detach(args)
    configure_logging(log_format(args.log_format))  # its warnings, and what its jobs log
    return _run_here(args)


def no_detach(args: argparse.Namespace) -> None:
    if getattr(args, "detach", False):
        raise InputError("--detach is for a run on a server: give --server URL too",
                         hint="a run here lasts as long as this command")


async def _run_here(args: argparse.Namespace) -> int:
    inputs = parse_inputs(args.input, args.input_file)
    bs = app_for(args, progress=progress_mode(args))
    plan = bs.load_workflow(Path(args.file).resolve())
    with stdout_to_stderr(args.json):
        async with bs:
            run_id = await bs.runs.start_plan(plan, inputs)  # under its run limit
            snapshots = await wait_all(bs, [run_id])
    return report(snapshots, args.json)


def _check_args(p: argparse.ArgumentParser) -> None:
    paths_arg(p)
    json_flag(p, "the diagnostics")


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("check", "check workflow and template files for errors without running "
                "anything", _check_args, cmd_check),
        Command("plan", "show the DAG a workflow compiles to", _plan_args, cmd_plan),
        Command("run", "run a workflow here (or on a server: --server) and wait for it to "
                "finish", _run_args, cmd_run),
    ]
