"""Compiling workflow files: parse, check against the executors and templates, build Plans."""
from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baseshift.core.compiled import CheckEnv, Compiled
from baseshift.core.diagnostics import Diagnostic, Severity, Span
from baseshift.core.plan import Plan, TemplateSpec
from baseshift.core.semver import Version, VersionError

from . import ast
from .parser import parse_source
from .report import Reporter
from .templates import Registry, check_template, template_version
from .validate import WorkflowCheck


@dataclass(slots=True)
class _Unit:
    path: str
    source: str
    report: Reporter
    tree: ast.SourceFile | None = None
    templates: tuple[TemplateSpec, ...] = ()


def compile_source(source: str, path: str, env: CheckEnv) -> Compiled:
    """Compile one file's text; never raises for anything the text contains."""
    return _compile([_Unit(str(path), source, Reporter(str(path), source))], env)[0]


def compile_files(paths: Sequence[str | Path], env: CheckEnv) -> list[Compiled]:
    """Compile several files together: templates from any of them may be used by all."""
    return _compile([_read(p) for p in paths], env)


def _read(path: str | Path) -> _Unit:
    name = str(path)
    try:
        source = Path(path).read_text(encoding="utf-8-sig")  # editors may add a BOM
    except (OSError, UnicodeDecodeError) as exc:
        report = Reporter(name, "")
        reason = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else \
            f"cannot be read ({exc.strerror or exc})"
        report.error(Span(1, 1, 1, 2), "dsl.io", f"{name} {reason}")
        return _Unit(name, "", report)
    return _Unit(name, source, Reporter(name, source))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while compiling.

    Building a large file's nodes otherwise triggers it hundreds of times (a third of the
    time of a 10,000-job file). Nothing here makes reference cycles, so memory is freed as
    usual; on the way out the new objects go straight to the oldest generation (freeze,
    enable, unfreeze) instead of being scanned at once as one huge young generation.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
            gc.unfreeze()


def _compile(units: list[_Unit], env: CheckEnv) -> list[Compiled]:
    with _gc_paused():
        for unit in units:
            if not unit.report.diagnostics:
                _guarded(unit, lambda u: _parse(u))
        registry = _registry(units, env)
        return [_finish(unit, env, registry) for unit in units]


def _guarded(unit: _Unit, step: Any) -> Any:
    try:
        return step(unit)
    except RecursionError:
        unit.report.error(Span(1, 1, 1, 2), "dsl.syntax", "this file nests too deeply to check",
                          "split deeply nested expressions into smaller ones")
        unit.tree = None
        return None


def _parse(unit: _Unit) -> None:
    parsed = parse_source(unit.source, unit.path)
    unit.report.diagnostics.extend(parsed.diagnostics)
    unit.report.damage = parsed.damage
    unit.tree = parsed.tree


def _registry(units: list[_Unit], env: CheckEnv) -> Registry:
    known: dict[str, dict[Version, TemplateSpec]] = {}
    origin: dict[tuple[str, Version], str] = {}
    for spec in env.templates:
        try:
            version = Version.parse(spec.version)
        except VersionError:
            continue
        known.setdefault(spec.name, {})[version] = spec
        origin[(spec.name, version)] = env.template_origins.get(
            spec.ref, "the template store or a plugin")
    for unit in units:
        if unit.tree is not None:
            _guarded(unit, lambda u: _register(u, env, known, origin))
    return Registry(known)


def _register(unit: _Unit, env: CheckEnv, known: dict[str, dict[Version, TemplateSpec]],
              origin: dict[tuple[str, Version], str]) -> None:
    assert unit.tree is not None
    specs = []
    for t in unit.tree.templates:
        spec = check_template(t, unit.report, env.executors)
        key = template_version(t)
        if key is not None and key in origin:
            unit.report.error(t.name.span, "dsl.duplicate",
                              f"template {key[0]}@{key[1]} is already defined in {origin[key]}",
                              "give this one a new version")
            continue
        if key is not None:
            origin[key] = unit.path
        if spec is not None and key is not None:
            known.setdefault(key[0], {})[key[1]] = spec
            specs.append(spec)
    unit.templates = tuple(specs)


def _finish(unit: _Unit, env: CheckEnv, registry: Registry) -> Compiled:
    plan = _guarded(unit, lambda u: _plan(u, env, registry)) if unit.tree else None
    diagnostics = tuple(sorted(unit.report.diagnostics, key=Diagnostic.sort_key))
    ok = not any(d.severity is Severity.ERROR for d in diagnostics)
    return Compiled(unit.path, unit.source, plan if ok else None,
                    unit.templates if ok else (), diagnostics)


def _plan(unit: _Unit, env: CheckEnv, registry: Registry) -> Plan | None:
    assert unit.tree is not None
    workflows = unit.tree.workflows
    for extra in workflows[1:]:
        unit.report.error(extra.name.span, "dsl.duplicate",
                          f"a file holds at most one workflow; '{extra.name.name}' is a second "
                          f"one after '{workflows[0].name.name}'",
                          "put each workflow in its own file")
    if not workflows:
        return None
    plan = WorkflowCheck(workflows[0], unit.report, env.executors, registry).run()
    return dataclasses.replace(plan, source=unit.source, path=unit.path) if plan else None
