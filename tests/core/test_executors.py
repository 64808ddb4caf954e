"""The application's executors: instances by name, read-only, with their abilities checked
once (`AcceptsCalls`, `Closable`)."""
from __future__ import annotations

from typing import Any, ClassVar

import pytest

from baseshift.core.executors import Executors
from baseshift.core.protocols import AcceptsCalls, Closable, JobContext, JobResult
from baseshift.plugins.executors.http import HttpExecutor
from baseshift.plugins.executors.manual import ManualExecutor
from baseshift.plugins.executors.shell import ShellExecutor


class Plain:
    name: ClassVar[str] = "plain"
    config_schema: ClassVar[dict[str, Any]] = {}

    async def execute(self, ctx: JobContext) -> JobResult:
        return JobResult()


class Closing(Plain):
    name: ClassVar[str] = "closing"
    closed = 0

    async def aclose(self) -> None:
        type(self).closed += 1


class Accepting(Plain):
    name: ClassVar[str] = "accepting"

    def accept(self, run_id: str, job: str, output: Any, error: str | None) -> None:
        return None


ALL = {"plain": Plain, "closing": Closing, "accepting": Accepting}


def test_one_instance_per_name_read_only() -> None:
    executors = Executors(ALL)
    assert sorted(executors) == ["accepting", "closing", "plain"]
    assert isinstance(executors["plain"], Plain)
    assert executors["plain"] is executors["plain"]
    with pytest.raises(TypeError):
        executors["plain"] = Plain()  # type: ignore[index]


def test_only_executors_with_accept_take_outside_calls() -> None:
    executors = Executors(ALL)
    assert executors.acceptor("accepting") is executors["accepting"]
    assert executors.acceptor("plain") is None
    assert executors.acceptor("unknown") is None


async def test_aclose_closes_each_closable_executor_once() -> None:
    Closing.closed = 0
    await Executors(ALL).aclose()
    assert Closing.closed == 1


def test_the_builtin_executors_declare_their_abilities() -> None:
    assert isinstance(ManualExecutor(), AcceptsCalls)
    assert isinstance(HttpExecutor(), Closable)
    assert not isinstance(ShellExecutor(), AcceptsCalls)
    assert not isinstance(ShellExecutor(), Closable)
