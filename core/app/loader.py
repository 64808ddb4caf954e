"""One loader for `check`, `run` and the server: which files of a folder are workflows and
which are templates, and the template set they are checked against together.

`check FILE`, `check DIR`, `run` and the server's catalog all call `load_folder`, so they
cannot disagree about what a file may use: a workflow sees the templates of every `.bsw` and
`*.template.yaml` file beside it, plus the plugins' and the template store's.
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..compiled import CheckEnv, Compiled, FileTemplate
from ..diagnostics import Diagnostic, Severity, Span
from ..errors import InputError
from ..plan import TemplateSpec
from .plan_memo import PlanMemo
from .template_files import TemplateFile, check_template_files, is_template_file
from .templatespec import to_document

WORKFLOW_SUFFIX = ".bsw"


class Checks(Protocol):
    """What loading needs from the application (`BaseShift` provides it): the executors, the
    templates every folder sees (plugins', the store's) and the plugins' plan checks."""

    @property
    def executor_classes(self) -> Mapping[str, Any]: ...

    def check_env(self, extra_templates: Sequence[TemplateSpec] = ()) -> CheckEnv: ...

    def with_plugin_checks(self, compiled: Compiled) -> Compiled: ...


@dataclass(frozen=True, slots=True)
class LoadedFolder:
    """Every workflow and template file of a folder, checked; `files` in name order, a
    template file as a `Compiled` without a plan."""

    folder: Path
    files: tuple[Compiled, ...]
    templates: tuple[FileTemplate, ...]

    def file(self, path: Path) -> Compiled:
        """The result of one loaded file (KeyError if it was not loaded)."""
        wanted = path.resolve()
        for compiled in self.files:
            if Path(compiled.path).resolve() == wanted:
                return compiled
        raise KeyError(str(path))


def is_workflow_file(path: Path) -> bool:
    return path.suffix == WORKFLOW_SUFFIX and not path.name.startswith(".")


def folder_files(folder: Path) -> list[Path]:
    """The workflow and template files of a folder (not sub-folders), in name order."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if (is_workflow_file(p) or is_template_file(p)) and p.is_file())


def load_folder(checks: Checks, folder: Path, include: Iterable[Path] = (),
                memo: PlanMemo | None = None) -> LoadedFolder:
    """Check the folder's files together.

    `include` names files of the folder to load whatever their names (`check FILE` and
    `run FILE` of a file not named `.bsw`); they are read as workflows. With a `memo`, a
    workflow file compiled by the memo's last load with the same text in the same
    environment is taken from it (core/app/plan_memo.py).

    Raises:
        InputError: an included file is YAML but not named as a template file.
    """
    paths = folder_files(folder)
    known = {p.resolve() for p in paths}
    for path in include:
        _refuse_plain_yaml(path)
        if path.resolve() not in known:
            paths.append(path)
            known.add(path.resolve())
    yaml = check_template_files([p for p in paths if is_template_file(p)],
                                executors=checks.executor_classes)
    found = [FileTemplate(spec, doc, f.path) for f in yaml for doc, spec in f.templates]
    workflows = _compile(checks, [p for p in paths if not is_template_file(p)], found, memo)
    found += [FileTemplate(spec, to_document(spec), Path(c.path))
              for c in workflows for spec in c.templates]
    by_path = {c.path: c for c in (*workflows, *(_as_compiled(f) for f in yaml))}
    return LoadedFolder(folder, tuple(by_path[str(p)] for p in paths), tuple(found))


def make_importable(folder: Path) -> None:
    """`uses python` finds modules kept beside the workflow file (e.g. workflows/shop.py)."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.append(entry)


def _refuse_plain_yaml(path: Path) -> None:
    if path.suffix in (".yaml", ".yml") and not is_template_file(path):
        raise InputError(f"{path} is neither a workflow (.bsw) nor a template file",
                         hint=f"name a template file NAME.template{path.suffix}")


def _compile(checks: Checks, paths: Sequence[Path], templates: Sequence[FileTemplate],
             memo: PlanMemo | None = None) -> list[Compiled]:
    from baseshift.dsl import compile_files

    specs = [t.spec for t in templates]
    origins = {t.spec.ref: str(t.path) for t in templates}
    env = dataclasses.replace(checks.check_env(specs), template_origins=origins)

    def compile_(subset: list[Path]) -> list[Compiled]:
        return [checks.with_plugin_checks(c) for c in compile_files(subset, env)]

    results = compile_(list(paths)) if memo is None else \
        memo.compile(paths, specs, origins, compile_)
    return _refuse_duplicate_workflows(results)


def _refuse_duplicate_workflows(results: list[Compiled]) -> list[Compiled]:
    """A workflow name defined again in a later file: that file gets an error and no plan
    (its templates stay: the other files were checked with them)."""
    first: dict[str, str] = {}
    out = []
    for compiled in results:
        plan = compiled.plan
        if plan is not None and plan.name in first:
            problem = duplicate_workflow(compiled.path, plan.name, first[plan.name])
            compiled = dataclasses.replace(compiled, plan=None,
                                           diagnostics=(*compiled.diagnostics, problem))
        elif plan is not None:
            first[plan.name] = compiled.path
        out.append(compiled)
    return out


def duplicate_workflow(path: str, name: str, first: str) -> Diagnostic:
    """The error of a file that defines workflow `name` again (`first` defined it)."""
    return Diagnostic(path, Span(1, 1, 1, 1), "catalog.duplicate-workflow",
                      f"workflow '{name}' is also defined in {first}; this file is ignored",
                      "give each workflow a unique name", Severity.ERROR)


def _as_compiled(f: TemplateFile) -> Compiled:
    return Compiled(str(f.path), f.source, None, tuple(s for _, s in f.templates),
                    f.diagnostics)
