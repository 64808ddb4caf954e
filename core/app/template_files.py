"""Job templates kept as YAML files beside the workflows: `NAME.template.yaml` (or `.yml`).

Each file holds one template document (or several, separated by `---`) in the same shape as
the template store's JSON documents. Files are read with ruamel.yaml's round-trip loader,
which keeps line and column of every key (the safe loader drops them) and, like the safe
loader, never builds Python objects from tags. Problems come back as diagnostics located at
the offending key, like errors in a `.bsw` file.
"""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from ..diagnostics import Diagnostic, Span
from ..plan import TemplateSpec
from ..templatestore import (
    JsonPath,
    TemplateDocument,
    TemplateError,
    check_step_types,
    parse_document,
)
from .templatespec import ExpressionParser, to_spec

SUFFIXES = (".template.yaml", ".template.yml")
CODE = "template.invalid"


def is_template_file(path: Path) -> bool:
    """Whether a file's name makes it a YAML template file (`NAME.template.yaml` or `.yml`)."""
    return path.name.endswith(SUFFIXES) and not path.name.startswith(".")


@dataclass(frozen=True, slots=True)
class TemplateFile:
    """One YAML template file as checked: its text (to show problems in), each valid
    template with the document it came from, and the problems."""

    path: Path
    source: str
    templates: tuple[tuple[TemplateDocument, TemplateSpec], ...]
    diagnostics: tuple[Diagnostic, ...]


def check_template_files(paths: Iterable[Path], parse: ExpressionParser | None = None,
                         executors: Iterable[str] | None = None) -> list[TemplateFile]:
    """Each file checked; a template defined again in a later file is a problem there."""
    if parse is None:
        from baseshift.dsl import parse_expression

        parse = parse_expression
    seen: dict[str, str] = {}
    return [_check_file(path, parse, executors, seen) for path in paths]


def _check_file(path: Path, parse: ExpressionParser, executors: Iterable[str] | None,
                seen: dict[str, str]) -> TemplateFile:
    source, docs, found = _read(path, executors, need_version=True, parse=None)
    problems = list(found)
    templates: list[tuple[TemplateDocument, TemplateSpec]] = []
    for doc, node in docs:
        spec = _spec(path, doc, node, parse, problems)
        if spec is None:
            continue
        if doc.ref in seen:
            problems.append(_at(path, node, (), f"template {doc.ref} is also defined in "
                                f"{seen[doc.ref]}; this one is ignored", None))
            continue
        seen[doc.ref] = str(path)
        templates.append((doc, spec))
    return TemplateFile(path, source, tuple(templates), tuple(problems))


def _spec(path: Path, doc: TemplateDocument, node: Any, parse: ExpressionParser,
          problems: list[Diagnostic]) -> TemplateSpec | None:
    try:
        return to_spec(doc, parse)
    except TemplateError as exc:
        problems.append(_at(path, node, exc.path, exc.detail, exc.hint))
        return None


def read_template_file(path: Path, executors: Iterable[str] | None = None, *,
                       need_version: bool = True, parse: ExpressionParser | None = None
                       ) -> tuple[list[tuple[TemplateDocument, Any]], list[Diagnostic]]:
    """The documents of one file (each with its YAML node, for positions) and the problems.

    `need_version=False` accepts documents without a version (to publish with a bump);
    with `parse`, step configs are converted too, so their errors are reported here."""
    _, docs, problems = _read(path, executors, need_version=need_version, parse=parse)
    return docs, problems


def _read(path: Path, executors: Iterable[str] | None, *, need_version: bool,
          parse: ExpressionParser | None
          ) -> tuple[str, list[tuple[TemplateDocument, Any]], list[Diagnostic]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return "", [], [Diagnostic(str(path), Span.point(1, 1), CODE,
                                   f"cannot read the file: {exc}")]
    try:
        nodes = [n for n in YAML(typ="rt").load_all(text) if n is not None]
    except YAMLError as exc:
        return text, [], [_yaml_problem(path, exc)]
    docs: list[tuple[TemplateDocument, Any]] = []
    problems: list[Diagnostic] = []
    for node in nodes:
        try:
            doc = parse_document(plain(node), need_version=need_version)
            if executors is not None:
                check_step_types(doc, executors)
            if parse is not None:
                to_spec(doc, parse)
        except TemplateError as exc:
            problems.append(_at(path, node, exc.path, exc.detail, exc.hint))
            continue
        docs.append((doc, node))
    return text, docs, problems


def plain(node: Any) -> Any:
    """A YAML value as plain JSON values (ruamel's scalar subclasses become int, str...)."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, ScalarBoolean | bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.date):
        return node.isoformat()
    return node  # None, or a tagged value the document check refuses


def _yaml_problem(path: Path, exc: YAMLError) -> Diagnostic:
    mark = exc.problem_mark if isinstance(exc, MarkedYAMLError) else None
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = exc.problem if isinstance(exc, MarkedYAMLError) and exc.problem else str(exc)
    return Diagnostic(str(path), Span.point(line, col), "template.yaml",
                      f"not valid YAML: {problem}")


def _at(path: Path, node: Any, where: JsonPath, message: str, hint: str | None) -> Diagnostic:
    line, col, width = position(node, where)
    return Diagnostic(str(path), Span.point(line, col, width), CODE, message, hint)


def position(node: Any, where: Sequence[str | int]) -> tuple[int, int, int]:
    """1-based line and column of the deepest part of `where` present in the YAML tree, and
    the width to underline (the key's length, or 1)."""
    line, col, width = _start(node)
    for part in where:
        if isinstance(node, CommentedMap) and part in node:
            key_line, key_col = node.lc.key(part)
            line, col, width = key_line + 1, key_col + 1, len(str(part))
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            item_line, item_col = node.lc.item(part)
            line, col, width = item_line + 1, item_col + 1, 1
            node = node[part]
        else:
            break
    return line, col, width


def _start(node: Any) -> tuple[int, int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 1, 1, 1
    return lc.line + 1, lc.col + 1, 1
