"""One loader: `check FILE`, `check DIR`, `run` and the server's catalog agree on every file
of every workflow folder, and YAML template files are checked as templates."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.loader import folder_files
from baseshift.core.app.template_files import is_template_file
from baseshift.core.errors import DSLError
from baseshift.plugins.commands.workflows import check_files

REPO = Path(__file__).resolve().parents[2]
FOLDERS = sorted({p.parent for p in (*REPO.glob("workflows/*"), *REPO.glob("tests/**/*"))
                  if p.is_file() and p in folder_files(p.parent)})

Verdict = tuple[bool, str | None, tuple[tuple[int, int, str, str], ...]]


def verdict(ok: bool, workflow: str | None, diagnostics: Any) -> Verdict:
    return ok, workflow, tuple(sorted((d.span.line, d.span.col, d.code, d.message)
                                      for d in diagnostics))


def run_verdict(bs: Any, path: Path) -> Verdict:
    """What `run` decides: the plan's workflow, or the errors (it shows no warnings)."""
    try:
        plan = bs.load_workflow(path)
    except DSLError as exc:
        return verdict(False, None, exc.diagnostics)
    return verdict(True, plan.name, ())


def catalog_verdict(bs: Any, path: Path) -> Verdict:
    for entry in bs.catalog.entries():
        if entry.path == path:
            return verdict(entry.ok, entry.plan.name if entry.plan else None,
                           entry.diagnostics)
    mine = [d for d in bs.catalog.problems if Path(d.path) == path]
    return verdict(not any(d.severity.value == "error" for d in mine), None, mine)


def test_the_folders_cover_the_examples_and_the_tests() -> None:
    names = {str(f.relative_to(REPO)) for f in FOLDERS}
    assert {"workflows", "tests/web/workflows", "tests/dsl/cases/invalid"} <= names


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: str(f.relative_to(REPO)))
async def test_check_run_and_the_server_agree_on_every_file(make_baseshift: Any,
                                                            folder: Path) -> None:
    async with make_baseshift(workflows_dir=folder, templates="memory") as bs:
        await bs.catalog.refresh(force=True)
        whole = {Path(c.path): c for c in check_files(bs, [str(folder)])}
        assert set(whole) >= set(folder_files(folder))
        for path in folder_files(folder):
            [alone] = check_files(bs, [str(path)])
            checked = verdict(alone.ok, alone.plan.name if alone.plan else None,
                              alone.diagnostics)
            in_dir = whole[path]
            assert verdict(in_dir.ok, in_dir.plan.name if in_dir.plan else None,
                           in_dir.diagnostics) == checked, path
            declares_workflow = alone.plan is not None or not alone.ok
            served = catalog_verdict(bs, path)
            if declares_workflow and not is_template_file(path):
                assert served == checked, path
                ran = checked if not alone.ok else (*checked[:2], ())
                assert run_verdict(bs, path) == ran, path
            else:
                assert served[0] == checked[0] and served[2] == checked[2], path


async def test_a_template_defined_twice_in_a_folder_names_the_other_file(
        make_baseshift: Any, tmp_path: Path) -> None:
    (tmp_path / "a.template.yaml").write_text(
        "templateId: greet.hi\nversion: 1.0.0\nsteps:\n  - name: s\n    type: shell\n"
        '    config: { command: "echo hi" }\n')
    (tmp_path / "b.bsw").write_text(
        'template greet.hi {\n  version "1.0.0"\n  uses shell\n  with { command: "echo" }\n}\n')
    async with make_baseshift() as bs:
        [_, second] = check_files(bs, [str(tmp_path)])
    [diag] = second.diagnostics
    assert diag.code == "dsl.duplicate"
    assert diag.message == ("template greet.hi@1.0.0 is already defined in "
                            f"{tmp_path / 'a.template.yaml'}")
