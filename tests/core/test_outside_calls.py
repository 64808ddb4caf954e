"""Outside calls: only a job running here with an executor that takes calls gets them."""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from active_runs import started
from plans import job

from baseshift.core.attempt_tasks import AttemptTasks
from baseshift.core.attempts import Launch, Outcome, prepare_attempt
from baseshift.core.errors import Conflict
from baseshift.core.executors import Executors
from baseshift.core.outside_calls import OutsideCalls
from baseshift.core.plan import JobSpec, Plan
from baseshift.core.protocols import JobContext, JobResult


class Waiting:
    """Takes outside calls; remembers them."""

    name: ClassVar[str] = "waiting"
    config_schema: ClassVar[dict[str, Any]] = {}
    calls: ClassVar[list[tuple[str, str, Any, str | None]]] = []

    async def execute(self, ctx: JobContext) -> JobResult:
        return JobResult()

    def accept(self, run_id: str, job: str, output: Any, error: str | None) -> None:
        self.calls.append((run_id, job, output, error))


class NoQueue:
    queue = None


class Held:
    """Runs an attempt here until it is cancelled."""

    async def run(self, launch: Launch) -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError("never reached")


PLAN = Plan("p", "1.0.0", jobs=(JobSpec("manual", "waiting", job("x").config),
                                job("auto")))


def calls_and_tasks() -> tuple[OutsideCalls, AttemptTasks, list[Launch]]:
    Waiting.calls.clear()
    run, fx = started(PLAN)
    tasks = AttemptTasks(Held(), NoQueue(), lambda m: None)
    calls = OutsideCalls({run.id: run}, Executors({"waiting": Waiting}), tasks)
    for key in ("manual", "auto"):
        assert run.begin_attempt(key, fx)
    return calls, tasks, [prepare_attempt(run, k) for k in ("manual", "auto")]


def test_only_jobs_of_an_accepting_executor_run_here_wait_for_calls() -> None:
    calls, _, _ = calls_and_tasks()
    assert calls.waits_for_calls("r1", "manual")
    assert not calls.waits_for_calls("r1", "auto")
    assert not calls.waits_for_calls("r1", "nope")
    assert not calls.waits_for_calls("elsewhere", "manual")


async def test_deliver_hands_the_call_to_the_waiting_attempt() -> None:
    calls, tasks, launches = calls_and_tasks()
    with pytest.raises(Conflict, match="not waiting for a result here"):
        calls.deliver("r1", "manual", output=1, error=None)  # its attempt has not started
    for launch in launches:
        tasks.start(launch, here=True)
    calls.deliver("r1", "manual", output={"ok": True}, error=None)
    assert Waiting.calls == [("r1", "manual", {"ok": True}, None)]
    with pytest.raises(Conflict, match="such as `manual`"):
        calls.deliver("r1", "auto", output=1, error=None)
    for task in tasks.cancel_all():
        with pytest.raises(asyncio.CancelledError):
            await task
