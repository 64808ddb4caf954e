"""`runs`, `show`, `run`, `cancel` and `retry` with `--server`: the same commands through a
server's API, printing what they print locally (the API's run documents are the
`--json` shapes of core/report.py)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from baseshift.core.command import ExitCode, print_json
from baseshift.core.errors import InputError
from baseshift.core.records import MAX_PAGE, AttemptRecord, JobRecord, RunRecord, RunSnapshot
from baseshift.core.report import runs_table, snapshot_text
from baseshift.core.states import JobState, RunState

if TYPE_CHECKING:
    from baseshift.plugins.client.http import Remote

RECONNECTS = 5
"""Event streams opened again in a row after a lost connection before giving up."""


def run_path(run_id: str, tail: str = "") -> str:
    return f"/api/v1/workflows/{quote(run_id, safe='')}{tail}"


def run_record(doc: dict[str, Any]) -> RunRecord:
    """A run record from the API's run document (`run_json`)."""
    return RunRecord(id=doc["id"], workflow=doc["workflow"], version=doc.get("version") or "",
                     source="", path=doc.get("path") or "", inputs=doc.get("inputs") or {},
                     state=RunState(doc["status"]), created_at=doc.get("created_at") or 0.0,
                     started_at=doc.get("started_at"), ended_at=doc.get("ended_at"),
                     outputs=doc.get("outputs"), error=doc.get("error"))


def run_snapshot(doc: dict[str, Any]) -> RunSnapshot:
    """A run with its jobs and attempts from the API's document (`snapshot_json`), jobs in
    the order the server lists them."""
    run = run_record(doc)
    jobs: dict[str, JobRecord] = {}
    attempts: list[AttemptRecord] = []
    for j in doc.get("jobs", []):
        tries = j.get("attempts", [])
        jobs[j["key"]] = JobRecord(
            run_id=run.id, key=j["key"], name=j["name"], index=j.get("index"),
            state=JobState(j["state"]), attempts=len(tries), output=j.get("output"),
            error=j.get("error"), inputs=j.get("inputs"), started_at=j.get("started_at"),
            ended_at=j.get("ended_at"), template=j.get("template"),
            handler=bool(j.get("handler")))
        attempts += [AttemptRecord(run_id=run.id, job_key=j["key"], number=a["number"],
                                   state=JobState(a["state"]), started_at=a.get("started_at")
                                   or 0.0, ended_at=a.get("ended_at"), error=a.get("error"),
                                   log=a.get("log") or "") for a in tries]
    return RunSnapshot(run, jobs, attempts)


def runs(remote: Remote, args: argparse.Namespace) -> int:
    found = list_runs(remote, args.limit, args.workflow, args.state or [])
    if args.json:
        print_json(found)
    else:
        print(runs_table([run_record(r) for r in found]))
    return ExitCode.OK


def list_runs(remote: Remote, limit: int, workflow: str | None,
              states: list[str]) -> list[dict[str, Any]]:
    """The newest `limit` runs, page after page (the API gives MAX_PAGE at most at once)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while len(found) < limit:
        params: list[tuple[str, Any]] = [("limit", min(limit - len(found), MAX_PAGE))]
        params += [("workflow", workflow)] if workflow else []
        params += [("state", s) for s in states]
        params += [("cursor", cursor)] if cursor else []
        page = remote.json("GET", "/api/v1/workflows", params=params)
        found += page["runs"]
        cursor = page.get("next_cursor")
        if not cursor or not page["runs"]:
            break
    return found


def show(remote: Remote, args: argparse.Namespace) -> int:
    logs = args.json or args.logs
    doc = remote.json("GET", run_path(args.run_id), params={"logs": str(logs).lower()})
    if args.json:
        print_json(doc)
    else:
        print(snapshot_text(run_snapshot(doc), logs=args.logs))
    return ExitCode.OK


def cancel(remote: Remote, args: argparse.Namespace) -> int:
    doc = remote.json("POST", run_path(args.run_id, "/cancel"))
    print(f"run {doc.get('id', args.run_id)} {doc.get('status', 'CANCELLED')}")
    return ExitCode.OK


def retry(remote: Remote, args: argparse.Namespace) -> int:
    started = remote.json("POST", run_path(args.run_id, "/retry"))
    return detached(remote, started, args) if args.detach else follow(remote, args.run_id, args)


def run(remote: Remote, args: argparse.Namespace, inputs: dict[str, Any]) -> int:
    """Start a run of the workflow the server loaded under this name, then follow it
    (or, with --detach, say its id)."""
    if args.file.endswith(".bsw") or "/" in args.file:
        raise InputError(f"{args.file!r} is a file; with --server, name a workflow the "
                         "server has loaded", hint="`baseshift run NAME --server URL`; the "
                         "server's workflows folder holds its files")
    started = remote.json("POST", "/api/v1/workflows",
                          body={"workflow": args.file, "inputs": inputs})
    if args.detach:
        return detached(remote, started, args)
    return follow(remote, str(started["workflow_id"]), args)


def detached(remote: Remote, started: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        print_json(started)
    else:
        run_id = started["workflow_id"]
        print(f"run {run_id} started on {remote.url}; `baseshift show {run_id} --server "
              f"{remote.url}` shows it")
    return ExitCode.OK


def follow(remote: Remote, run_id: str, args: argparse.Namespace) -> int:
    """Wait for the run to finish, printing its changes on stderr unless --json, then
    report it as a local run is reported (exit code 1 unless it COMPLETED)."""
    quiet = bool(getattr(args, "json", False))
    try:
        _wait(remote, run_id, None if quiet else sys.stderr)
    except KeyboardInterrupt:
        print(f"stopped following; run {run_id} goes on on {remote.url} (`baseshift show "
              f"{run_id} --server {remote.url}`)", file=sys.stderr)
        return 130
    doc = remote.json("GET", run_path(run_id), params={"logs": str(quiet).lower()})
    if quiet:
        print_json(doc)
    else:
        print(snapshot_text(run_snapshot(doc)))
    return ExitCode.OK if doc["status"] == RunState.COMPLETED.value else ExitCode.FAILED


def _wait(remote: Remote, run_id: str, out: Any) -> None:
    """Read the run's event stream until its `end`; a lost connection is opened again (the
    stream starts with a snapshot, so nothing is missed that matters)."""
    from baseshift.plugins.client.http import Unreachable

    lost = 0
    while True:
        try:
            with remote.events(run_path(run_id, "/events")) as messages:
                for event, data in messages:
                    lost = 0
                    if event == "end":
                        return
                    if out is not None:
                        _print_event(out, event, data)
        except Unreachable:
            lost += 1
            if lost > RECONNECTS:
                raise
            time.sleep(1.0)
            continue
        lost += 1  # the stream ended without `end`: the server stopped
        if lost > RECONNECTS:
            raise Unreachable(f"{remote.url} stopped sending run {run_id}'s events",
                              hint=f"the run may go on: `baseshift show {run_id} --server "
                                   f"{remote.url}`")
        time.sleep(1.0)


def _print_event(out: Any, event: str, data: Any) -> None:
    """One line per change, as `run` prints them locally on a pipe."""
    if not isinstance(data, dict):
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(data.get("at") or time.time()))
    error = f": {data['error']}" if data.get("error") else ""
    if event == "RunStateChanged":
        out.write(f"{stamp} run {data.get('run_id')} {data.get('workflow')} "
                  f"{data.get('new')}{error}\n")
    elif event == "JobStateChanged" and data.get("new") not in ("READY", None):
        attempt = f" (attempt {data['attempt']})" if data.get("attempt") else ""
        tail = error if data.get("new") != "RUNNING" else ""
        out.write(f"{stamp}   {data.get('job')} {data.get('new')}{attempt}{tail}\n")
    elif event == "snapshot":  # where the run stands when the stream (re)starts
        out.write(f"{stamp} run {data.get('workflow_id')} {data.get('workflow')} "
                  f"{data.get('status')}\n")
        for job in [*data.get("completed_jobs", ()), *data.get("running_jobs", ())]:
            if isinstance(job, dict):  # jobs that changed before the stream began
                out.write(f"{stamp}   {job.get('id')} {job.get('status')}\n")
    out.flush()

