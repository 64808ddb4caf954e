"""Applying the retention policies to the state store (and template versions to the template
store), recording the last application where the compliance report reads it, and the legal
hold and erasure of one run, each with its audit entry."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baseshift.core import audit
from baseshift.core.capabilities import (
    Erasure,
    LegalHolds,
    RetentionPolicies,
    SharedDocuments,
    missing_ability,
)
from baseshift.core.config import WithPluginOptions
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.protocols import StateStore
from baseshift.core.retention import (
    JOB_RESULTS,
    OPTIONS,
    RESULT_COPIES,
    RUNS,
    TEMPLATE_VERSIONS,
    Pruned,
    ResultCopies,
    RetentionPolicy,
    Tombstone,
)
from baseshift.core.states import RunState
from baseshift.core.templatestore import TemplateStore

if TYPE_CHECKING:
    from baseshift.core.appface import App

log = logging.getLogger("baseshift.retention")

DOCUMENT = "retention"
"""The shared document (or `data_dir/retention.json`) holding the last application."""
FILE = "retention.json"
HINT = "retention is applied by the state store: use store = \"memory\", \"sqlite\" or " \
    "\"postgres\""


RESULT_DOCUMENTS = "result_documents"
"""The count of job result copies removed (MongoDB documents, `results = "mongo"`)."""


def documents_of(baseshift: App) -> ResultCopies | None:
    """The job result copies a plugin of the started application keeps, if any."""
    return baseshift.stash.get(RESULT_COPIES)


def policy_of(settings: WithPluginOptions) -> RetentionPolicy:
    """The configured policies (ConfigError for a bad table)."""
    return RetentionPolicy.from_options(settings.extra.get(OPTIONS))


@dataclass(frozen=True, slots=True)
class Applied:
    """One application of the policies: when, whether only a look, what went (or would)."""

    dry_run: bool
    applied_at: float
    removed: Mapping[str, int] = field(default_factory=dict)
    held: int = 0
    policies: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "applied_at": self.applied_at,
                "removed": dict(self.removed), "held": self.held,
                "policies": dict(self.policies)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Applied:
        return cls(bool(data["dry_run"]), float(data["applied_at"]),
                   {str(k): int(v) for k, v in dict(data.get("removed") or {}).items()},
                   int(data.get("held", 0)),
                   {str(k): float(v) for k, v in dict(data.get("policies") or {}).items()})


async def apply_policies(store: StateStore, templates: TemplateStore | None,
                         policy: RetentionPolicy, data_dir: Path, *, dry_run: bool,
                         now: float | None = None,
                         documents: ResultCopies | None = None) -> Applied:
    """Apply `policy` now: the run kinds and the audit trail in the state store, template
    versions in the template store; audited as `retention.apply`, and (unless a dry run)
    recorded as the last application."""
    if not isinstance(store, RetentionPolicies):
        raise missing_ability(store, "apply retention policies", "data retention", HINT)
    at = time.time() if now is None else now
    cutoffs = policy.cutoffs(at)
    pruned = await store.apply_retention(
        {k: v for k, v in cutoffs.items() if k != TEMPLATE_VERSIONS}, dry_run)
    copies = [cutoffs[k] for k in (RUNS, JOB_RESULTS) if k in cutoffs]
    if documents is not None and copies:
        keep = {*await store.unfinished_runs()}
        if isinstance(store, LegalHolds):
            keep |= {*await store.legal_holds()}
        gone = await documents.prune(max(copies), keep, dry_run)
        pruned = pruned + Pruned({RESULT_DOCUMENTS: gone})
    if TEMPLATE_VERSIONS in cutoffs and templates is not None:
        gone = await prune_templates(store, templates, cutoffs[TEMPLATE_VERSIONS], dry_run)
        pruned = pruned + Pruned({TEMPLATE_VERSIONS: gone})
    elif TEMPLATE_VERSIONS in cutoffs:
        pruned = pruned + Pruned({TEMPLATE_VERSIONS: 0})
    done = Applied(dry_run, at, dict(pruned.removed), pruned.held, policy.to_json())
    detail = {"dry_run": str(dry_run).lower(), "held": str(done.held),
              **{f"removed_{k}": str(n) for k, n in sorted(done.removed.items())}}
    entry = audit.entry("retention.apply", "retention:policies")
    await audit.record(store, [replace(entry, detail=detail)])
    if not dry_run:
        await save_last(store, data_dir, done)
    return done


async def prune_templates(state: StateStore, templates: TemplateStore, cutoff: float,
                          dry_run: bool) -> int:
    """Delete the template versions published before `cutoff`, except each template's newest
    and any an unfinished run uses; each deletion audited as `template.delete`."""
    from baseshift.plugins.templates.audited import delete

    in_use = await _templates_in_use(state)
    newest: dict[str, str] = {}
    docs = await templates.list()
    for doc in docs:  # by name and version: the last of a name is its newest
        newest[doc.name] = doc.version
    old = [d for d in docs if d.version != newest[d.name] and d.ref not in in_use
           and d.created_at is not None and d.created_at < cutoff]
    if not dry_run:
        for doc in old:
            await delete(state, templates, doc.name, doc.version)
    return len(old)


async def _templates_in_use(state: StateStore) -> set[str]:
    used: set[str] = set()
    for run_id in await state.unfinished_runs():
        snapshot = await state.load_run(run_id, attempts=False)
        if snapshot is not None:
            used |= {j.template for j in snapshot.jobs.values() if j.template}
    return used


async def save_last(store: StateStore, data_dir: Path, done: Applied) -> None:
    """Record `done` as the last application: the store's shared document when it keeps
    them (every server sees it), else a file in `data_dir`."""
    if isinstance(store, SharedDocuments):
        await store.save_document(DOCUMENT, done.to_json())
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / FILE).write_text(json.dumps(done.to_json()), encoding="utf-8")


async def load_last(store: StateStore, data_dir: Path) -> Applied | None:
    """The last application recorded, or None."""
    data: Any = None
    if isinstance(store, SharedDocuments):
        data = await store.load_document(DOCUMENT)
    else:
        path = data_dir / FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("cannot read %s: retention counts as never applied", path)
    try:
        return Applied.from_json(data) if isinstance(data, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


async def set_hold(store: StateStore, run_id: str, hold: bool) -> None:
    """Put run `run_id` on legal hold or take it off, audited as `run.hold`/`run.release`."""
    if not isinstance(store, LegalHolds):
        raise missing_ability(store, "hold runs", "legal hold", HINT)
    action = "run.hold" if hold else "run.release"
    await store.set_legal_hold(run_id, hold, [audit.entry(action, f"run:{run_id}")])


async def erase(store: StateStore, run_id: str,
                documents: ResultCopies | None = None) -> Tombstone:
    """Erase the data of finished run `run_id`, leaving its tombstone; audited as
    `run.erase`. NotFound for an unknown run, Conflict for an unfinished or held one."""
    if not isinstance(store, Erasure):
        raise missing_ability(store, "erase runs", "erasure", HINT)
    snapshot = await store.load_run(run_id, attempts=False)
    if snapshot is None:
        if await store.tombstone(run_id) is not None:
            raise Conflict(f"run '{run_id}' was already erased")
        raise NotFound(f"run '{run_id}' not found")
    if snapshot.run.state in (RunState.INITIALIZED, RunState.RUNNING):
        raise Conflict(f"run '{run_id}' is {snapshot.run.state.value}: only a finished run "
                       "can be erased", hint="cancel it first")
    entry = audit.entry("run.erase", f"run:{run_id}", workflow=snapshot.run.workflow)
    tombstone = Tombstone(run_id, snapshot.run.workflow, entry.at, entry.actor)
    await store.erase_run(tombstone, [entry])
    if documents is not None:
        await documents.erase_run(run_id)
    return tombstone
