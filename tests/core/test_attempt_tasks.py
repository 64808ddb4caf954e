"""Attempt tasks: each attempt runs here or on a worker and posts how it ended; a cancel
stops attempts only once it is stored."""
from __future__ import annotations

import asyncio

import pytest
from active_runs import started
from plans import job

from baseshift.core.attempt_tasks import AttemptTasks
from baseshift.core.attempts import Launch, Outcome, prepare_attempt
from baseshift.core.errors import StoreError
from baseshift.core.inbox import AttemptDone, AttemptLost, Message
from baseshift.core.plan import Plan
from baseshift.core.protocols import LostAttempt, QueuedAttempt

PLAN = Plan("p", "1.0.0", jobs=(job("a"), job("b")))


def launches() -> list[Launch]:
    run, fx = started(PLAN)
    for key in ("a", "b"):
        assert run.begin_attempt(key, fx)
    return [prepare_attempt(run, "a"), prepare_attempt(run, "b")]


class Runner:
    """Runs an attempt here: returns at once, or waits until cancelled (noting it)."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.cancelled: list[str] = []

    async def run(self, launch: Launch) -> Outcome:
        try:
            if self.hold:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(launch.key)
            raise
        return Outcome({"ran": launch.key}, None, False, "here")


class Queue:
    """An attempt queue whose workers answer, lose the attempt, or cannot be reached."""

    def __init__(self, answer: BaseException | None = None) -> None:
        self.answer = answer
        self.sent: list[QueuedAttempt] = []

    async def run(self, attempt: QueuedAttempt) -> tuple[object, str | None, bool, str]:
        self.sent.append(attempt)
        if self.answer is not None:
            raise self.answer
        return {"ran": attempt.job}, None, False, "on a worker"


class Host:
    def __init__(self, queue: Queue | None) -> None:
        self.queue = queue


async def ended(posted: list[Message], count: int = 1) -> list[Message]:
    while len(posted) < count:
        await asyncio.sleep(0.001)
    return posted


async def test_an_attempt_runs_here_and_posts_its_outcome() -> None:
    posted: list[Message] = []
    tasks = AttemptTasks(Runner(), Host(None), posted.append)
    launch = launches()[0]
    tasks.start(launch, here=False)  # no queue: here all the same
    assert tasks.running("r1", "a")
    assert await ended(posted) == [
        AttemptDone("r1", "a", 1, Outcome({"ran": "a"}, None, False, "here"))]
    assert not tasks.running("r1", "a")


async def test_with_a_queue_an_attempt_runs_on_a_worker_unless_it_must_run_here() -> None:
    posted: list[Message] = []
    queue = Queue()
    tasks = AttemptTasks(Runner(), Host(queue), posted.append)
    remote, local = launches()
    tasks.start(remote, here=False)
    tasks.start(local, here=True)
    assert sorted(await ended(posted, 2), key=repr) == [
        AttemptDone("r1", "a", 1, Outcome({"ran": "a"}, None, False, "on a worker")),
        AttemptDone("r1", "b", 1, Outcome({"ran": "b"}, None, False, "here"))]
    assert queue.sent == [QueuedAttempt("r1", "a", 1, ())]


async def test_a_lost_attempt_and_an_unreachable_queue_are_told_apart() -> None:
    posted: list[Message] = []
    lost = AttemptTasks(Runner(), Host(Queue(LostAttempt("lease expired"))), posted.append)
    lost.start(launches()[0], here=False)
    assert await ended(posted) == [AttemptLost("r1", "a", 1, "lease expired")]
    posted.clear()
    down = AttemptTasks(Runner(), Host(Queue(StoreError("no database"))), posted.append)
    down.start(launches()[0], here=False)
    [message] = await ended(posted)
    assert isinstance(message, AttemptDone)
    assert message.outcome.retryable
    assert message.outcome.error == "the attempt could not be queued: no database"


async def test_attempts_stop_only_once_the_cancel_is_stored() -> None:
    posted: list[Message] = []
    runner = Runner(hold=True)
    tasks = AttemptTasks(runner, Host(None), posted.append)
    for launch in launches():
        tasks.start(launch, here=True)
    await asyncio.sleep(0)
    tasks.stop_later("r1", ["a"])
    assert not tasks.running("r1", "a") and tasks.running("r1", "b")
    await asyncio.sleep(0.01)
    assert runner.cancelled == []  # the round deciding the cancel is not stored yet
    tasks.stop_decided()
    await asyncio.sleep(0.01)
    assert runner.cancelled == ["a"]
    for task in tasks.cancel_all():
        with pytest.raises(asyncio.CancelledError):
            await task
    assert runner.cancelled == ["a", "b"]
    assert posted == []  # a cancelled attempt posts nothing: its end was recorded already


async def test_stop_later_without_keys_stops_every_attempt_of_the_run() -> None:
    runner = Runner(hold=True)
    tasks = AttemptTasks(runner, Host(None), lambda m: None)
    for launch in launches():
        tasks.start(launch, here=True)
    await asyncio.sleep(0)
    tasks.stop_later("r1")
    tasks.stop_decided()
    await asyncio.sleep(0.01)
    assert sorted(runner.cancelled) == ["a", "b"]
    assert tasks.cancel_all() == []


async def test_stopping_the_engine_cancels_attempts_marked_in_an_unstored_round() -> None:
    """The engine stopped (or its store failed) between `stop_later` and `stop_decided`: the
    marked attempts are cancelled and awaited too, never left running past the engine."""
    runner = Runner(hold=True)
    tasks = AttemptTasks(runner, Host(None), lambda m: None)
    for launch in launches():
        tasks.start(launch, here=True)
    await asyncio.sleep(0)
    tasks.stop_later("r1", ["a"])
    stopped = tasks.cancel_all()
    assert len(stopped) == 2
    for task in stopped:
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(runner.cancelled) == ["a", "b"]
    tasks.stop_decided()  # the round that never got stored cancels nothing twice
    assert tasks.cancel_all() == []
