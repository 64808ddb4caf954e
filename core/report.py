"""Runs as JSON and as text: what `baseshift run --json`, `show` and `runs` print.

Sealed secret values (core/secretvalues.py) show as `***` in all of them."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .records import AttemptRecord, JobRecord, RunRecord, RunSnapshot
from .secretvalues import hidden


def _shown(sealed: bool) -> Callable[[Any], Any]:
    return (lambda value: value) if sealed else hidden


def _duration(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(end - start, 6)


def attempt_json(a: AttemptRecord, *, logs: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": a.number, "state": a.state.value, "started_at": a.started_at,
        "ended_at": a.ended_at, "duration": _duration(a.started_at, a.ended_at),
        "error": a.error,
    }
    if logs:
        out["log"] = a.log
    return out


def job_json(j: JobRecord, attempts: list[AttemptRecord], *, logs: bool = True,
             sealed: bool = False) -> dict[str, Any]:
    """A job as JSON; `sealed` keeps sealed secret values as stored (for `revealed`),
    otherwise they are `***`."""
    show = _shown(sealed)
    return {
        "key": j.key, "name": j.name, "index": j.index, "state": j.state.value,
        "template": j.template, "handler": j.handler, "inputs": show(j.inputs),
        "output": show(j.output),
        "error": j.error, "started_at": j.started_at, "ended_at": j.ended_at,
        "duration": _duration(j.started_at, j.ended_at),
        "attempts": [attempt_json(a, logs=logs) for a in attempts],
    }


def run_json(r: RunRecord, *, sealed: bool = False) -> dict[str, Any]:
    show = _shown(sealed)
    return {
        "id": r.id, "workflow": r.workflow, "version": r.version, "status": r.state.value,
        "path": r.path, "inputs": show(r.inputs), "outputs": show(r.outputs), "error": r.error,
        "created_at": r.created_at, "started_at": r.started_at, "ended_at": r.ended_at,
        "duration": _duration(r.started_at, r.ended_at),
    }


def snapshot_json(s: RunSnapshot, *, logs: bool = True, sealed: bool = False) -> dict[str, Any]:
    """The whole run: its record, then every job (in key order) with its attempts; secret
    values as `***` (as stored with `sealed`)."""
    by_job: dict[str, list[AttemptRecord]] = {}
    for a in s.attempts:
        by_job.setdefault(a.job_key, []).append(a)
    jobs = [job_json(j, sorted(by_job.get(k, []), key=lambda a: a.number), logs=logs,
                     sealed=sealed)
            for k, j in ordered_jobs(s)]
    return {**run_json(s.run, sealed=sealed), "jobs": jobs}


def status_json(s: RunSnapshot) -> dict[str, Any]:
    """The progress shape of `GET /api/v1/workflows/{id}/status`: the job running now (the
    first, when several run in parallel: all are in `running_jobs`), finished and pending jobs.
    `status` and `state` are the same word of the state vocabulary (core/states.py); `state`
    stays for clients written before `status` used it too."""
    finished, running, pending = [], [], []
    for key, j in ordered_jobs(s):
        item = {"id": key, "name": j.name, "status": j.state.value, "state": j.state.value}
        if j.state.finished:
            finished.append(item)
        elif j.state.value in ("RUNNING", "RETRYING"):
            running.append(item)
        else:
            pending.append(item)
    return {"workflow_id": s.run.id, "workflow": s.run.workflow,
            "status": s.run.state.value, "state": s.run.state.value,
            "current_job": running[0] if running else None, "running_jobs": running,
            "completed_jobs": finished, "pending_jobs": pending, "error": s.run.error}


def format_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def runs_table(runs: list[RunRecord]) -> str:
    """One line per run, newest first, for `baseshift runs`."""
    if not runs:
        return "no runs yet"
    rows = [("RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION")]
    for r in runs:
        d = _duration(r.started_at, r.ended_at)
        rows.append((r.id, r.workflow, r.state.value, format_time(r.created_at),
                     f"{d:.2f}s" if d is not None else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def snapshot_text(s: RunSnapshot, *, logs: bool = False) -> str:
    """A human summary of one run: header, outputs, then one line per job."""
    r = s.run
    d = _duration(r.started_at, r.ended_at)
    lines = [f"run {r.id}  {r.workflow} {r.version}  {r.state.value}"
             + (f"  in {d:.2f}s" if d is not None else "")]
    if r.error:
        lines.append(f"error: {r.error}")
    if r.outputs:
        lines.append(f"outputs: {_short(r.outputs)}")
    by_job: dict[str, list[AttemptRecord]] = {}
    for a in s.attempts:
        by_job.setdefault(a.job_key, []).append(a)
    width = max((len(k) for k in s.jobs), default=4)
    instances: dict[str, int] = {}
    for j in s.jobs.values():
        if j.index is not None:
            instances[j.name] = instances.get(j.name, 0) + 1
    for key, j in ordered_jobs(s):
        tries = by_job.get(key, [])
        detail = j.error if j.error and j.state.value != "SUCCEEDED" else _short(hidden(j.output))
        count = (f"instances={instances[key]}" if key in instances
                 else f"attempts={len(tries)}")
        lines.append(f"  {key.ljust(width)}  {j.state.value:<9}  {count:<11} {detail}")
        if logs:
            for a in tries:
                if a.log:
                    lines.extend(f"      | {line}" for line in a.log.splitlines()[-20:])
    return "\n".join(lines)


def ordered_jobs(s: RunSnapshot) -> list[tuple[str, JobRecord]]:
    """Jobs in the order they were declared, each fan-out's instances right after it."""
    position = {j.name: i for i, j in enumerate(s.jobs.values()) if j.index is None}
    return sorted(s.jobs.items(), key=lambda kv: (position.get(kv[1].name, len(position)),
                                                  -1 if kv[1].index is None else kv[1].index))


def _short(value: Any, limit: int = 80) -> str:
    import json

    text = json.dumps(value, default=str) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
