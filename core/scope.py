"""What names an expression can read while a run executes."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .plan import Plan
    from .records import JobRecord

REDACTED = "***"


class RunView(Protocol):
    """What a scope reads of a run (`runstate.ActiveRun`): its plan and job records."""

    @property
    def plan(self) -> Plan: ...

    @property
    def jobs(self) -> Mapping[str, JobRecord]: ...


class RunScope(Mapping[str, Any]):
    """Names an expression may read: fixed values first, then jobs looked up on demand.

    Looking jobs up lazily keeps evaluation O(1) in the size of the workflow.
    """

    __slots__ = ("base", "run")

    def __init__(self, run: RunView, base: dict[str, Any]) -> None:
        self.run = run
        self.base = base

    def __getitem__(self, name: str) -> Any:
        if name in self.base:
            return self.base[name]
        rec = self.run.jobs.get(name)
        if rec is None or name not in self.run.plan.by_name:
            raise KeyError(name)
        return {"output": rec.output, "state": rec.state.value, "attempts": rec.attempts}

    def __contains__(self, name: object) -> bool:
        return name in self.base or name in self.run.plan.by_name

    def __iter__(self) -> Iterator[str]:
        yield from self.base
        yield from self.run.plan.by_name

    def __len__(self) -> int:
        return len(self.base) + len(self.run.plan.by_name)

    def with_values(self, **values: Any) -> RunScope:
        return RunScope(self.run, {**self.base, **values})


class Redacted(Mapping[str, Any]):
    """`secret.X` while rendering inputs for storage: every secret reads as ***."""

    def __getitem__(self, name: str) -> str:
        return REDACTED

    def get(self, name: str, default: Any = None) -> str:
        return REDACTED

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
