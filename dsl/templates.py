"""Templates: checking template blocks, resolving `uses name@range`, shared statement checks."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from baseshift.core.expr import ObjectExpr
from baseshift.core.plan import TemplateSpec
from baseshift.core.schema import OBJECT, STRING
from baseshift.core.semver import Range, Version, VersionError

from . import ast, decls
from .report import Reporter, did_you_mean
from .shellcheck import check_shell
from .typecheck import Checker, Scope, Shape

SECRET = Shape(OBJECT, what="secret", each=Shape(STRING))
RUN = Shape(OBJECT, {"id": Shape(STRING), "workflow": Shape(STRING)}, "run")
_WORDS: dict[type, str] = {ast.FanOut: "for", ast.RunsOn: "runs-on"}
"""Statements whose keyword is not their class name in lower case."""


@dataclass(frozen=True, slots=True)
class Registry:
    """Every known template version, by name, to resolve `uses name@range`."""

    templates: Mapping[str, Mapping[Version, TemplateSpec]]

    def resolve(self, ref: ast.UsesRef, report: Reporter) -> TemplateSpec | None:
        assert ref.range is not None
        name, text = ref.name.name, ref.range.value
        try:
            wanted = Range.parse(text)
        except VersionError as exc:
            report.error(ref.range.span, "dsl.bad-version", exc.message, exc.hint)
            return None
        versions = self.templates.get(name)
        if not versions:
            report.error(ref.name.span, "dsl.unknown-template", f"there is no template '{name}'",
                         did_you_mean(name, self.templates, "known templates"))
            return None
        best = wanted.best(versions)
        if best is None:
            shown = ", ".join(str(v) for v in sorted(versions))
            report.error(ref.range.span, "dsl.unknown-template",
                         f"no version of template '{name}' matches '{text}'",
                         f"available versions: {shown}")
            return None
        return versions[best]


def singles(body: Sequence[object], kinds: tuple[type, ...], report: Reporter,
            where: str) -> dict[type, Any]:
    """The first statement of each kind, reporting any repeated one as a duplicate."""
    found: dict[type, Any] = {}
    for stmt in body:
        kind = type(stmt)
        if kind not in kinds:
            continue
        if kind in found:
            word = _WORDS.get(kind) or kind.__name__.lower().replace("block", "")
            report.error(stmt.span, "dsl.duplicate",  # type: ignore[attr-defined]
                         f"{where} has more than one '{word}'")
            continue
        found[kind] = stmt
    return found


def check_version(v: ast.Version | None, report: Reporter, owner: ast.Ident,
                  what: str) -> str | None:
    if v is None:
        report.error(owner.span, "dsl.missing", f"{what} '{owner.name}' has no version",
                     'add a line like: version "1.0.0"')
        return None
    try:
        return str(Version.parse(v.value.value))
    except VersionError as exc:
        report.error(v.value.span, "dsl.bad-version", str(exc))
        return None


def check_template(t: ast.Template, report: Reporter,
                   executors: Mapping[str, Mapping[str, Any]]) -> TemplateSpec | None:
    """Check one template block; its spec, or None when it has errors."""
    kinds = (ast.Version, ast.Description, ast.TemplateUses, ast.With, ast.InputBlock,
             ast.OutputDecl)
    found = singles(t.body, kinds, report, f"template '{t.name.name}'")
    version = check_version(found.get(ast.Version), report, t.name, "template")
    inputs = decls.input_specs(fields_of(found.get(ast.InputBlock)), report, "input")
    outputs = decls.input_specs(fields_of(found.get(ast.OutputDecl)), report, "output")
    uses = found.get(ast.TemplateUses)
    if uses is None:
        report.error(t.name.span, "dsl.missing", f"template '{t.name.name}' has no 'uses'",
                     "add a line like: uses python")
    elif uses.executor.name not in executors:
        unknown_executor(report, uses.executor, executors, {})
    config = found[ast.With].values if ast.With in found else ObjectExpr((), t.span)
    scope = Scope({"input": decls.record(inputs, "input", "dsl.unknown-input"),
                   "secret": SECRET, "run": RUN})
    types = Checker(report, scope).fields(config)
    if uses is not None and uses.executor.name in executors:
        decls.check_config(report, f"template {t.name.name}", uses.executor.name,
                           executors[uses.executor.name], config, types, t.name.span)
        check_shell(report, config, executors[uses.executor.name],
                    {"input", "steps"}.__contains__)
    if version is None or uses is None:
        return None  # other errors are reported; the spec still lets jobs resolve it
    description = found[ast.Description].value.value if ast.Description in found else None
    # No output block: no output contract at all (any output is accepted).
    output_schema = decls.object_schema(outputs, closed=False) if ast.OutputDecl in found else {}
    return TemplateSpec(t.name.name, version, uses.executor.name, config,
                        decls.object_schema(inputs), output_schema,
                        inputs, outputs, description, t.span)


def template_version(t: ast.Template) -> tuple[str, Version] | None:
    """`(name, version)` of a template block whose version is valid (for the registry)."""
    v = next((s for s in t.body if isinstance(s, ast.Version)), None)
    try:
        return (t.name.name, Version.parse(v.value.value)) if v else None
    except VersionError:
        return None


def fields_of(block: ast.InputBlock | ast.OutputDecl | None) -> tuple[ast.FieldDecl, ...]:
    return block.fields if block is not None else ()


def unknown_executor(report: Reporter, name: ast.Ident, executors: Mapping[str, Any],
                      templates: Mapping[str, Any]) -> None:
    hint = did_you_mean(name.name, executors, "known executors")
    if name.name in templates:
        versions = ", ".join(str(v) for v in sorted(templates[name.name]))
        hint = f"'{name.name}' is a template: write uses {name.name}@RANGE (versions: {versions})"
    report.error(name.span, "dsl.unknown-executor", f"there is no executor '{name.name}'", hint)
