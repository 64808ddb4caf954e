"""Every workflow and template example in README.md and docs/*.md passes `baseshift check`
(or fails it, where the text says it should), so the docs cannot drift from the language.

Which fenced blocks are examples, by their first line that is not blank or a `#` comment:

- `workflow NAME` or `template NAME`: a whole `.bsw` file;
- a workflow statement (`job`, `input`, `on failure`, `schedule`, ...): the body of a
  workflow, checked inside `workflow example_N { version "1.0.0" ... }`;
- `templateId:`, or `"templateId":` in a JSON block: a template document, checked as a
  `.template.yaml` file.

An HTML comment on the line before the fence changes that: `<!-- invalid -->` (the
example shows a mistake: it must have errors), `<!-- fragment -->` (a synopsis, a piece of
a bigger example or a stored record: not checked), `<!-- beside workflows/ -->` (it uses
the templates of the repository's `workflows/` folder). The blocks of one document are
checked together, as the files of one folder, with the loader `baseshift check` uses: a
template defined in one block may be used by the others.

A block that starts with `$ baseshift check FILE` shows what the command prints for the
example just before it, saved as FILE: it must be exactly what `baseshift check` prints.
"""
from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.app.loader import load_folder
from baseshift.core.diagnostics import Severity, render_all
from baseshift.core.plan import TemplateSpec
from baseshift.core.settings import Settings
from baseshift.dsl import Compiled

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(invalid|fragment|beside workflows/)\s*-->$")
STATEMENT = re.compile(r"(job|input|output|on failure|schedule|webhook|runs|runs-on"
                       r"|concurrency|description)\b")


@dataclass(frozen=True)
class Block:
    """One fenced example: where it is, what it holds and how the text marks it."""

    doc: Path
    line: int
    kind: str
    """`workflow` (a whole file), `body` (a workflow's body), `template-document` or
    `check-output` (what `baseshift check` prints)."""
    text: str
    marker: str | None

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"

    def file_name(self) -> str:
        name = f"{self.doc.stem}-line{self.line}"
        return f"{name}.template.yaml" if self.kind == "template-document" else f"{name}.bsw"

    def source(self, index: int) -> str:
        if self.kind != "body":
            return self.text
        return f'workflow example_{index} {{\n  version "1.0.0"\n{self.text}}}\n'


def blocks(doc: Path) -> list[Block]:
    """The examples of one document, in order."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    start: int | None = None
    for number, line in enumerate(lines, 1):
        if not FENCE.match(line):
            continue
        if start is None:
            start = number
            continue
        body = [text[len(lines[start - 1]) - len(lines[start - 1].lstrip()):]
                for text in lines[start:number - 1]]
        block = _block(doc, start, FENCE.match(lines[start - 1]), body, lines[start - 2:start - 1])
        if block is not None:
            found.append(block)
        start = None
    return found


def _block(doc: Path, line: int, fence: re.Match[str] | None, body: list[str],
           before: list[str]) -> Block | None:
    assert fence is not None
    code = [t.strip() for t in body if t.strip() and not t.strip().startswith("#")]
    if not code:
        return None
    first, info = code[0], fence.group(2)
    if first.startswith("$ baseshift check "):
        return Block(doc, line, "check-output", "\n".join(body) + "\n", None)
    if info in ("", "bsw") and re.match(r"(workflow|template) [\w.]+", first):
        kind = "workflow"
    elif info in ("", "bsw") and STATEMENT.match(first):
        kind = "body"
    elif (info == "yaml" and first.startswith("templateId:")) or (
            info == "json" and '"templateId":' in "\n".join(code[:2])):
        kind = "template-document"
    else:
        return None
    marked = MARKER.match(before[0].strip()) if before else None
    return Block(doc, line, kind, "\n".join(body) + "\n", marked.group(1) if marked else None)


FOUND = [b for doc in DOCS for b in blocks(doc)]
EXAMPLES = [b for b in FOUND if b.kind != "check-output"]
CHECKED = [b for b in EXAMPLES if b.marker != "fragment"]
OUTPUTS = [b for b in FOUND if b.kind == "check-output"]


def _app(data: Path) -> BaseShift:
    return BaseShift(Settings(store="memory", templates="memory", data_dir=data,
                              load_entrypoints=False))


@functools.cache
def _workflows_templates() -> tuple[TemplateSpec, ...]:
    with tempfile.TemporaryDirectory() as data:
        return tuple(t.spec for t in load_folder(_app(Path(data)), REPO / "workflows").templates)


@functools.cache
def _checked(doc: Path, beside_workflows: bool) -> dict[str, tuple[Compiled, Block]]:
    """The examples of one document (with the `workflows/` templates or without), checked
    together as the files of one folder."""
    group = [b for b in CHECKED if b.doc == doc and (b.marker == "beside workflows/")
             == beside_workflows]
    folder = Path(tempfile.mkdtemp(prefix="docs-"))
    names: dict[str, Path] = {}
    for index, block in enumerate(group):
        path = folder / block.file_name()
        path.write_text(block.source(index), encoding="utf-8")
        names[block.id] = path
    app = _app(folder / ".data")
    if beside_workflows:
        app.extra_templates = _workflows_templates()
    loaded = load_folder(app, folder)
    return {b.id: (loaded.file(names[b.id]), b) for b in group}


def _report(compiled: Compiled, block: Block) -> str:
    shift = "" if block.kind != "body" else " (lines 1-2 are the wrapper added by the test)"
    listing = render_all(list(compiled.diagnostics), {compiled.path: compiled.source})
    return f"the example at {block.id} (line 1 is the line after the fence{shift}):\n{listing}"


def test_the_examples_are_found() -> None:
    by_doc = {b.doc.name for b in CHECKED}
    assert {"README.md", "language.md", "templates.md", "triggers.md",
            "executors.md"} <= by_doc
    assert len([b for b in CHECKED if b.doc.name == "language.md"]) >= 6


@pytest.mark.parametrize("block", [b for b in CHECKED if b.marker != "invalid"],
                         ids=lambda b: b.id)
def test_example_checks(block: Block) -> None:
    compiled, _ = _checked(block.doc, block.marker == "beside workflows/")[block.id]
    assert compiled.ok, _report(compiled, block)
    assert compiled.diagnostics == (), _report(compiled, block)


@pytest.mark.parametrize("block", [b for b in CHECKED if b.marker == "invalid"],
                         ids=lambda b: b.id)
def test_invalid_example_has_errors(block: Block) -> None:
    compiled, _ = _checked(block.doc, False)[block.id]
    assert any(d.severity is Severity.ERROR for d in compiled.diagnostics), (
        f"{block.id} is marked <!-- invalid --> but checks without errors")


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_markers_precede_an_example(doc: Path) -> None:
    """A marker before anything but an example is a typo that would leave it unchecked."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    starts = {b.line for b in EXAMPLES if b.doc == doc}
    for number, line in enumerate(lines, 1):
        if line.strip().startswith("<!--") and "-->" in line and number + 1 not in starts:
            marker = MARKER.match(line.strip())
            assert marker is None, f"{doc.name}:{number}: {line.strip()} is not before an example"


@pytest.mark.slow
@pytest.mark.parametrize("shown", OUTPUTS, ids=lambda b: b.id)
def test_shown_check_output_is_what_check_prints(shown: Block, tmp_path: Path,
                                                 run_cli: Callable[..., Any]) -> None:
    before = [b for b in EXAMPLES if b.doc == shown.doc and b.line < shown.line]
    assert before and before[-1].marker == "invalid", (
        f"{shown.id} shows check output but no <!-- invalid --> example comes before it")
    command, *expected = shown.text.splitlines()
    name = command.removeprefix("$ baseshift check ").strip()
    (tmp_path / name).write_text(before[-1].source(0), encoding="utf-8")
    result = run_cli("check", name, cwd=tmp_path)
    assert result.exit_code == 1
    assert (result.stdout + result.stderr).splitlines() == expected
