"""The engine's inbox: typed messages, in order, and the wake-up that starts a round."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from active_runs import active_run
from plans import job

from baseshift.core.attempts import Outcome
from baseshift.core.inbox import Activate, AttemptDone, AttemptLost, Cancel, Inbox, Message, Rerun
from baseshift.core.plan import Plan

RUN = active_run(Plan("p", "1.0.0", jobs=(job("a"),)))


def test_take_yields_every_message_in_order_even_those_posted_meanwhile() -> None:
    inbox = Inbox()
    inbox.post(Activate(RUN))
    inbox.post(Cancel("r1", "stop"))
    seen: list[Message] = []
    for message in inbox.take():
        seen.append(message)
        if isinstance(message, Activate):
            inbox.post(AttemptLost("r1", "a", 1, "worker gone"))
    assert seen == [Activate(RUN), Cancel("r1", "stop"), AttemptLost("r1", "a", 1, "worker gone")]
    assert list(inbox.take()) == []


async def test_wait_returns_once_something_was_posted_or_woke_it() -> None:
    inbox = Inbox()
    waiting = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    inbox.wake()
    await asyncio.wait_for(waiting, 1)
    waiting = asyncio.create_task(inbox.wait())  # the wake-up was used up
    await asyncio.sleep(0)
    assert not waiting.done()
    inbox.post(Cancel("r1", "stop"))
    await asyncio.wait_for(waiting, 1)


def test_every_message_names_its_run() -> None:
    messages: list[Message] = [Activate(RUN), Rerun(RUN, "a"), Cancel("r1", "x"),
                               AttemptDone("r1", "a", 1, Outcome(None, None, False, "")),
                               AttemptLost("r1", "a", 1, "gone")]
    assert {m.run_id for m in messages} == {"r1"}


def test_messages_are_frozen_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Cancel("r1", "x").reason = "y"  # type: ignore[misc]
    assert AttemptDone("r1", "a", 1, Outcome(1, None, False, "")) == \
        AttemptDone("r1", "a", 1, Outcome(1, None, False, ""))
