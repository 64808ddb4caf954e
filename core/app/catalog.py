"""The server's workflows: every `.bsw` file of one folder, compiled, reloaded on change.

A file with errors stays listed with its diagnostics (the UI shows them) instead of stopping
the server; runs can only start from files that check.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..cache import Cache, CacheStats, JSONValue
from ..compiled import Compiled, FileTemplate, WorkflowEntry
from ..diagnostics import Diagnostic, Severity
from ..errors import DSLError, NotFound, StoreError
from ..plan import Plan, TemplateSpec
from .compile_cache import TTL, answer, compiled_key
from .loader import Checks, duplicate_workflow, folder_files, load_folder, make_importable
from .plan_memo import PlanMemo
from .template_files import is_template_file

if TYPE_CHECKING:
    from ..templatestore import TemplateStore

log = logging.getLogger("baseshift.catalog")

RELOAD_INTERVAL = 1.0
"""Seconds between checks of the workflows folder for changed files."""


Fingerprint = tuple[tuple[str, int, int], ...]

RELOAD_FAILED = "failed"
"""A reload that raised: the workflows of the previous load stay in place."""
RELOAD_BROKEN = "broken"
"""A reload that finished with at least one file that does not check."""


class CatalogHost(Checks, Protocol):
    """What the catalog needs of the application: the checks every folder is loaded with,
    the template store, and where it leaves the store's templates for the checks."""

    extra_templates: tuple[TemplateSpec, ...]

    def check_digest(self, extra_templates: Sequence[TemplateSpec] = ()) -> str: ...

    @property
    def templates(self) -> TemplateStore | None: ...


class WorkflowCatalog:
    """The workflows of `folder` (not recursive), with the templates they can use."""

    def __init__(self, baseshift: CatalogHost, folder: Path) -> None:
        self.bs = baseshift
        self.folder = folder.resolve()  # runs record absolute paths: resumable from any cwd
        self._entries: dict[str, WorkflowEntry] = {}
        self.templates: tuple[TemplateSpec, ...] = ()
        """Every template the workflows can use besides the plugins': the store's, the
        folder's."""
        self.file_templates: tuple[FileTemplate, ...] = ()
        """The templates defined in the folder's files, with their paths."""
        self.problems: tuple[Diagnostic, ...] = ()
        """Diagnostics of files that hold no workflow (template files)."""
        self._seen: Fingerprint | None = None
        self.generation = 0
        """Incremented on every reload, so views can tell that the catalog changed."""
        self._environment: tuple[int, str] | None = None
        """The digest of what a text is checked against, and the generation it is of."""
        self.plans = PlanMemo(baseshift.check_digest)
        """The files compiled by the last load, so a reload recompiles only changed ones."""
        self.reload_listeners: dict[str, Callable[[str], None]] = {}
        """By the name each observer registered with (again: replaced), called with
        `RELOAD_FAILED` or `RELOAD_BROKEN` after a (re)load that went wrong (the metrics
        count them); a listener that raises is logged and skipped."""

    # ------------------------------------------------------------ reading

    def entries(self) -> list[WorkflowEntry]:
        return sorted(self._entries.values(), key=lambda e: e.name)

    def log_summary(self, what: str) -> None:
        """Log what was (re)loaded: a warning when a file is broken, naming each broken file
        with its first error (also as fields: `broken`, a list of `{file, errors,
        first_error}`), else an info line."""
        line, broken = self.summary()
        log.log(logging.WARNING if broken else logging.INFO, "%s %s", what, line,
                extra={"event": f"workflows.{what}", "workflows": len(self._entries),
                       "folder": str(self.folder), "broken": broken})

    def summary(self) -> tuple[str, list[dict[str, object]]]:
        """One line for the console, what is loaded and which files are broken, and the
        broken files (none when every file checks)."""
        entries = self.entries()
        errors: dict[str, list[Diagnostic]] = {}
        for d in (*(d for e in entries for d in e.diagnostics), *self.problems):
            if d.severity is Severity.ERROR:
                errors.setdefault(d.path, []).append(d)
        line = f"{len(entries)} workflow(s) from {self.folder}"
        if not errors:
            return line, []
        broken = [{"file": path, "errors": len(found), "first_error": _first(found)}
                  for path, found in sorted(errors.items())]
        files = "; ".join(f"{Path(p).name} ({len(found)} error{'s' if len(found) > 1 else ''}"
                          f", first: {_first(found)})" for p, found in sorted(errors.items()))
        return f"{line}; broken: {files}", broken

    def plan_stats(self) -> CacheStats:
        """The hits and misses of the compiled files kept between reloads (`plans`)."""
        return self.plans.stats()

    def get(self, name: str) -> WorkflowEntry:
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise NotFound(f"no workflow named '{name}'", hint=f"loaded workflows: {known}")
        return entry

    def plan(self, name: str) -> Plan:
        """The plan to start a run of `name`; DSLError if its file does not check now."""
        entry = self.get(name)
        if entry.plan is None:
            raise DSLError(f"workflow '{name}' has errors in {entry.path}; fix them to run it",
                           list(entry.diagnostics))
        return entry.plan

    def validate(self, source: str, filename: str = "pasted.bsw") -> Compiled:
        """Check a workflow text against the executors and the templates the server knows."""
        from baseshift.dsl import compile_source

        compiled = compile_source(source, filename, self.bs.check_env(self.templates))
        return self.bs.with_plugin_checks(compiled)

    async def validation(self, source: str, filename: str, cache: Cache
                         ) -> dict[str, JSONValue | None]:
        """`validate`'s answer as the API shows it, from `cache` when the same text was
        checked against the same templates, executors, plugins and language build
        (core/app/compile_cache.py); a cache that fails is logged and bypassed."""
        if self._environment is None or self._environment[0] != self.generation:
            self._environment = (self.generation, self.bs.check_digest(self.templates))
        key = compiled_key(self._environment[1], source, filename)
        try:
            kept = await cache.get(key)
        except StoreError as exc:
            log.warning("checking without the cache: %s", exc.message)
            return answer(self.validate(source, filename))
        if isinstance(kept, dict):
            return kept
        found = answer(self.validate(source, filename))
        try:
            await cache.set(key, found, TTL)
        except StoreError as exc:
            log.warning("could not keep a checked text in the cache: %s", exc.message)
        return found

    # ------------------------------------------------------------ loading

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload when a file was added, changed or removed; True if it reloaded."""
        seen = self._fingerprint()
        if seen == self._seen and not force:
            return False
        try:
            self._load(await self._stored_templates())
        except Exception:
            self._tell(RELOAD_FAILED)
            raise
        self._seen = seen
        self.generation += 1
        if self.summary()[1]:
            self._tell(RELOAD_BROKEN)
        return True

    def _tell(self, outcome: str) -> None:
        for listener in list(self.reload_listeners.values()):
            try:
                listener(outcome)
            except Exception:  # an observer never stops a reload
                log.exception("a reload listener failed")

    async def watch(self, interval: float = RELOAD_INTERVAL) -> None:
        """Reload on change until cancelled; a failing reload is logged and retried."""
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.refresh():
                    self.log_summary("reloaded")
            except Exception:
                log.exception("reloading workflows from %s failed", self.folder,
                              extra={"event": "workflows.reload_failed"})

    def _fingerprint(self) -> Fingerprint:
        out = []
        for path in folder_files(self.folder):
            stat = path.stat()
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(out)

    async def _stored_templates(self) -> list[TemplateSpec]:
        store = self.bs.templates
        return list(await store.specs()) if store is not None else []

    def _load(self, stored: Sequence[TemplateSpec]) -> None:

        make_importable(self.folder)
        # Only the store's templates are the application's: the folder's own are found again
        # by every load (kept here, they would clash with themselves on the next reload).
        self.bs.extra_templates = tuple(stored)
        loaded = load_folder(self.bs, self.folder, memo=self.plans)
        self.file_templates = loaded.templates
        self.templates = (*stored, *(t.spec for t in loaded.templates))
        entries: dict[str, WorkflowEntry] = {}
        problems: list[Diagnostic] = []
        for compiled in loaded.files:
            entry = _entry(compiled)
            if entry is None or (entry.name in entries and not compiled.ok):
                problems.extend(compiled.diagnostics)
            elif entry.name in entries:  # named like an earlier file that does not check
                problems.append(duplicate_workflow(str(entry.path), entry.name,
                                                   str(entries[entry.name].path)))
            else:
                entries[entry.name] = entry
        self._entries = entries
        self.problems = tuple(problems)


def _first(found: list[Diagnostic]) -> str:
    """`line:col: error[code]: message` of the first of a file's errors."""
    d = min(found, key=Diagnostic.sort_key)
    return f"{d.span.line}:{d.span.col}: error[{d.code}]: {d.message}"


def _entry(compiled: Compiled) -> WorkflowEntry | None:
    path = Path(compiled.path)
    if is_template_file(path):
        return None  # its problems are listed with the folder's, it is not a workflow
    if compiled.plan is not None:
        return WorkflowEntry(compiled.plan.name, path, compiled.source, compiled.plan,
                             compiled.diagnostics)
    if compiled.ok:
        return None  # a file of templates only
    return WorkflowEntry(_declared_name(compiled.source) or path.stem, path, compiled.source,
                         None, compiled.diagnostics)


def _declared_name(source: str) -> str | None:
    """The name after `workflow` in a file that does not check (best effort, for listing)."""
    for line in source.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "workflow":
            return words[1].strip("{")
    return None
