"""The compliance report: every plugin's controls (the `compliance_controls` hook), found now,
grouped per framework. Nothing in it is typed in: a framework is compliant when every control
mapped to it is implemented, non-compliant when none is, partially compliant otherwise."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from baseshift.core.compliance import FRAMEWORKS, Control
from baseshift.core.hooks import Hooks

FrameworkStatus = Literal["compliant", "partially_compliant", "non_compliant"]


@dataclass(frozen=True, slots=True)
class FrameworkSummary:
    """How one framework stands: its controls implemented and pending, and the verdict."""

    name: str
    implemented: int
    pending: int

    @property
    def status(self) -> FrameworkStatus:
        if self.pending == 0 and self.implemented > 0:
            return "compliant"
        if self.implemented == 0:
            return "non_compliant"
        return "partially_compliant"


@dataclass(frozen=True, slots=True)
class Report:
    """The controls as found at `at` (epoch seconds), and the summary per framework."""

    at: float
    controls: tuple[Control, ...]

    @property
    def date(self) -> str:
        """`at` as ISO 8601 in UTC with a `Z`, to the second."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))

    @property
    def frameworks(self) -> tuple[FrameworkSummary, ...]:
        summaries = []
        for name in FRAMEWORKS:
            mapped = [c for c in self.controls if c.frameworks.get(name)]
            done = sum(c.status == "implemented" for c in mapped)
            summaries.append(FrameworkSummary(name, done, len(mapped) - done))
        return tuple(summaries)

    def to_json(self) -> dict[str, Any]:
        return {
            "report_date": self.date,
            "compliance_status": {
                f.name: {"status": f.status, "last_assessment": self.date,
                         "controls_implemented": f.implemented,
                         "controls_pending": f.pending}
                for f in self.frameworks},
            "controls": [control_json(c) for c in self.controls],
        }


def control_json(control: Control) -> dict[str, Any]:
    return {"id": control.id, "title": control.title,
            "frameworks": {k: list(v) for k, v in control.frameworks.items()},
            "status": control.status, "evidence": control.evidence}


def sorted_controls(controls: Sequence[Control]) -> tuple[Control, ...]:
    """By id, so that the report reads the same whatever order plugins answered in."""
    return tuple(sorted(controls, key=lambda c: c.id))


async def build_report(hooks: Hooks) -> Report:
    """Ask every plugin for its controls now."""
    return Report(time.time(), sorted_controls(await hooks.compliance_controls()))
