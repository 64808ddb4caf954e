"""What compiling workflow files gives: the contract between the language front end
(`baseshift.dsl`, which builds these) and the application (which loads folders of files and
serves their plans). The kernel owns the types so that neither side imports the other's
modules to name them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Severity
from .plan import Plan, TemplateSpec
from .templatestore import TemplateDocument


@dataclass(frozen=True)
class CheckEnv:
    """What a file is checked against: executor config schemas and known templates."""

    executors: Mapping[str, dict[str, Any]]
    templates: Sequence[TemplateSpec] = ()
    template_origins: Mapping[str, str] = field(default_factory=dict)
    """Where a template of `templates` comes from, by `name@version` (a file's path), for
    messages; those not named are the store's or a plugin's."""


@dataclass(frozen=True)
class Compiled:
    """The result of compiling one file; `plan` is None if it has no workflow or errors."""

    path: str
    source: str
    plan: Plan | None
    templates: tuple[TemplateSpec, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error."""
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)



@dataclass(frozen=True, slots=True)
class WorkflowEntry:
    """One workflow file as the server sees it: its plan, or the reasons it has none."""

    name: str
    path: Path
    source: str
    plan: Plan | None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        return self.plan is not None


@dataclass(frozen=True, slots=True)
class FileTemplate:
    """A template defined in a file of the folder. The template APIs list it with its path;
    it is read-only there (edit the file to change it)."""

    spec: TemplateSpec
    document: TemplateDocument
    path: Path
