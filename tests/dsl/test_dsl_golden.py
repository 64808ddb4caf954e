"""Golden files: valid cases compile to the stored plan JSON, invalid ones to the stored
diagnostics. Regenerate with BASESHIFT_UPDATE_GOLDEN=1 and review the diff."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from dsl_helpers import ENV

from baseshift.core.diagnostics import render_all
from baseshift.dsl import compile_files, render_plan

HERE = Path(__file__).parent
UPDATE = os.environ.get("BASESHIFT_UPDATE_GOLDEN") == "1"
VALID = sorted(p.name for p in (HERE / "cases" / "valid").glob("*.bsw"))
INVALID = sorted(p.name for p in (HERE / "cases" / "invalid").glob("*.bsw"))
WARNINGS = sorted(p.name for p in (HERE / "cases" / "warnings").glob("*.bsw"))


def _check(golden: Path, actual: str) -> None:
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing; run with BASESHIFT_UPDATE_GOLDEN=1"
    assert actual == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", VALID)
def test_valid_case(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    [result] = compile_files([f"cases/valid/{name}"], ENV)
    assert result.ok, render_all(list(result.diagnostics), {result.path: result.source})
    if result.plan is None:
        actual = "no workflow\n"
    else:
        actual = render_plan(result.plan, "json") + "\n"
    _check(HERE / "cases" / "valid" / name.replace(".bsw", ".json"), actual)


@pytest.mark.parametrize("name", INVALID)
def test_invalid_case(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    [result] = compile_files([f"cases/invalid/{name}"], ENV)
    assert not result.ok and result.plan is None and result.templates == ()
    actual = render_all(list(result.diagnostics), {result.path: result.source}) + "\n"
    _check(HERE / "cases" / "invalid" / name.replace(".bsw", ".expected"), actual)


@pytest.mark.parametrize("name", WARNINGS)
def test_warning_case(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files that compile, with warnings: the plan is kept and the warnings are shown."""
    monkeypatch.chdir(HERE)
    [result] = compile_files([f"cases/warnings/{name}"], ENV)
    assert result.ok and result.plan is not None and result.diagnostics
    assert {d.severity.value for d in result.diagnostics} == {"warning"}
    actual = render_all(list(result.diagnostics), {result.path: result.source}) + "\n"
    _check(HERE / "cases" / "warnings" / name.replace(".bsw", ".expected"), actual)


def _codes_in_checker() -> set[str]:
    found: set[str] = set()
    for module in (HERE.parent.parent / "dsl").glob("*.py"):
        found |= set(re.findall(r'"(dsl\.[a-z-]+)"', module.read_text(encoding="utf-8")))
    return found - {"dsl.invalid"}


def test_every_code_has_an_invalid_case() -> None:
    expected = "".join(p.read_text(encoding="utf-8")
                       for kind in ("invalid", "warnings")
                       for p in (HERE / "cases" / kind).glob("*.expected"))
    shown = set(re.findall(r"(?:error|warning)\[(dsl\.[a-z-]+)\]", expected))
    missing = _codes_in_checker() - shown - {"dsl.io"}  # dsl.io: test_api, needs a bad file
    assert not missing, f"no golden case shows: {sorted(missing)}"


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 25
