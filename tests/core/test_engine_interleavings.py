"""Interleavings: cancel, retry, timers and resume meeting fan-outs, handlers and user code."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import engine_samples as samples
from plans import job

from baseshift.core.expr import Binary, ListExpr, Literal, Name, ObjectExpr
from baseshift.core.plan import FanOut, JobSpec, Plan, RetryPolicy
from baseshift.core.states import JobState, RunState

WAIT = 10


def here(fn: str, **args: Any) -> ObjectExpr:
    """A `with` block calling a function of this module."""
    fields: list[Any] = [("function", Literal(f"{__name__}:{fn}"))]
    fields += [(k, v if not isinstance(v, str | int | float | bool) else Literal(v))
               for k, v in args.items()]
    return ObjectExpr(tuple(fields))


def local_job(name: str, fn: str, needs: tuple[str, ...] = (), **kw: Any) -> JobSpec:
    from baseshift.core.plan import Dependency

    args = kw.pop("args", {"tag": name})
    deps = tuple(Dependency(d.rstrip("?"), d.endswith("?")) for d in needs)
    return JobSpec(name, "python", here(fn, **args), needs=deps, **kw)


# ------------------------------------------------------------ job functions for these tests

async def raise_cancelled(tag: str) -> None:
    """User code that lets a CancelledError escape without its task being cancelled (an
    awaited future that someone else cancelled, a library bug...)."""
    samples.EVENTS.append(("start", tag, 0))
    raise asyncio.CancelledError()


async def gate(tag: str) -> str:
    """Returns at once when FLAGS[tag] is set, else hangs until cancelled."""
    samples.EVENTS.append(("start", tag, 0))
    if samples.FLAGS.get(tag):
        return "open"
    await asyncio.sleep(3600)
    return "never"


async def slow_to_stop(tag: str) -> None:
    """Hangs; when cancelled, takes 0.3 s to clean up (like a shell command that handles
    SIGTERM within the executor's grace period)."""
    samples.EVENTS.append(("start", tag, 0))
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await asyncio.sleep(0.3)
        samples.EVENTS.append(("stopped", tag, 0))
        raise


async def wait_state(bs: Any, run_id: str, key: str, state: JobState) -> None:
    async def poll() -> None:
        while True:
            snap = await bs.store.load_run(run_id)
            if key in snap.jobs and snap.jobs[key].state is state:
                return
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), WAIT)


# ------------------------------------------------------------ bugs

async def test_retry_of_a_fan_out_with_a_skipped_item(make_baseshift: Any) -> None:
    """BUG: retry-from-failed re-expands a fan-out; an instance SKIPPED by its per-item
    `when` is neither kept nor reset, so `_expand_one` re-evaluates the condition and tries
    SKIPPED -> SKIPPED, an IllegalTransition: the run is abandoned instead of retried."""
    items = ListExpr((Literal("ok"), Literal("skip"), Literal("bad")))
    fan = job("fan", "switch", args={"tag": Name("t")}, fanout=FanOut("t", items),
              when=Binary("!=", Name("t"), Literal("skip")))
    plan = Plan("p", "1.0.0", jobs=(fan,))
    samples.FLAGS["ok"] = True
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        first = await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        assert first.state is RunState.FAILED
        samples.FLAGS["bad"] = True
        await bs.engine.resume(plan, run_id, retry=True)
        second = await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        snap = await bs.store.load_run(run_id)
    assert second.state is RunState.COMPLETED
    assert snap.jobs["fan[1]"].state is JobState.SKIPPED
    assert [len(snap.attempts_of(f"fan[{i}]")) for i in range(3)] == [1, 0, 2]


async def test_retry_timer_of_a_cancelled_run_does_not_fire_in_the_retried_run(
        make_baseshift: Any) -> None:
    """BUG: cancel leaves the job's retry timer in the engine's retry timers, keyed by (run id, job
    key). After `retry` the same run id is active again; when the job is RETRYING again,
    the stale timer makes it READY early, ignoring the backoff."""
    delay = 0.6
    plan = Plan("p", "1.0.0", jobs=(
        job("f", "fail_until", args={"tag": "f", "times": 2},
            retry=RetryPolicy(retries=1, delay=delay, factor=1.0)),))
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        await wait_state(bs, run_id, "f", JobState.RETRYING)  # stale timer due at ~t0+delay
        await bs.engine.cancel(run_id)
        assert (await asyncio.wait_for(bs.engine.wait(run_id), WAIT)).state is \
            RunState.CANCELLED
        await asyncio.sleep(delay / 2)
        await bs.engine.resume(plan, run_id, retry=True)
        await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        snap = await bs.store.load_run(run_id)
    attempts = snap.attempts_of("f")
    assert [a.state for a in attempts] == [JobState.FAILED, JobState.FAILED,
                                           JobState.SUCCEEDED]
    waited = attempts[2].started_at - attempts[1].ended_at
    assert waited >= delay * 0.9, f"retry started after {waited:.3f}s, backoff is {delay}s"


async def test_cancelled_error_raised_by_user_code_fails_the_attempt(
        make_baseshift: Any) -> None:
    """BUG: `_attempt` re-raises every CancelledError, assuming the engine cancelled the
    task. A CancelledError escaping user code (task not cancelled) posts no "done"
    message: the job stays RUNNING forever, its slot is never released, the run hangs."""
    plan = Plan("p", "1.0.0", jobs=(local_job("x", "raise_cancelled"), job("other")))
    async with make_baseshift(max_parallel=1) as bs:
        run_id = await bs.engine.submit(plan, {})
        record = await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        snap = await bs.store.load_run(run_id)
    assert record.state is RunState.FAILED
    assert snap.jobs["x"].state is JobState.FAILED
    assert snap.jobs["other"].state is JobState.SUCCEEDED


async def test_retrying_a_cancelled_run_is_not_cancelled_again_by_the_watcher(
        make_baseshift: Any, monkeypatch: Any) -> None:
    """BUG: `resume(retry=True)` puts the run in `self.runs` while the store still says
    CANCELLED (the RUNNING state is stored by the next round). the cancel watch polling in that
    window sees CANCELLED and cancels the freshly retried run. WATCH_INTERVAL is shrunk
    only to make the window deterministic; with 0.5 s (and SQLite's slower commits) it is
    a race that a server retrying runs will hit now and then."""
    import baseshift.core.cancel_watch as cancel_watch

    plan = Plan("p", "1.0.0", jobs=(local_job("g", "gate"),))
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        while not samples.EVENTS:
            await asyncio.sleep(0.005)
        await bs.engine.cancel(run_id)
        assert (await asyncio.wait_for(bs.engine.wait(run_id), WAIT)).state is \
            RunState.CANCELLED
        monkeypatch.setattr(cancel_watch, "WATCH_INTERVAL", 0.0)
        await asyncio.sleep(0.6)  # the watcher is now polling continuously
        samples.FLAGS["g"] = True
        await bs.engine.resume(plan, run_id, retry=True)
        record = await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
    assert record.state is RunState.COMPLETED, record.error


async def test_cancel_is_stored_before_running_attempts_are_stopped(
        make_baseshift: Any) -> None:
    """BUG (durability): `_cancel` cancels the attempt tasks while handling the message,
    before the round's transaction is written. The builtin stores write synchronously (no
    await inside `apply`), which hides it; with any store whose async `apply` really awaits
    (the StateStore protocol allows it: a networked or threaded store), the attempt is stopped
    while the store still says RUNNING, and a crash there loses the cancel (`resume` re-runs
    the attempt). The slow `apply` below stands in for such a store."""
    plan = Plan("p", "1.0.0", jobs=(job("h", "hang"),))
    async with make_baseshift() as bs:
        real_apply = bs.store.apply
        seen: list[bool] = []

        async def slow_apply(changes: Any) -> None:
            cancelling = any(r.state is RunState.CANCELLED for r in changes.runs.values())
            await asyncio.sleep(0.05)  # a commit that takes 50 ms
            if cancelling:
                seen.append(any(e[0] == "stopped" for e in samples.EVENTS))
            await real_apply(changes)

        bs.store.apply = slow_apply  # type: ignore[method-assign]
        run_id = await bs.engine.submit(plan, {})
        while not samples.EVENTS:
            await asyncio.sleep(0.005)
        await bs.engine.cancel(run_id)
        await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
    assert seen == [False], "the attempt was stopped before the cancel was stored"


async def test_cancel_after_a_quick_retry_stops_the_new_attempt(make_baseshift: Any) -> None:
    """BUG: `_attempt`'s `finally` pops `_tasks[(run id, key)]`. When a cancelled attempt
    takes a moment to stop and the run is retried meanwhile, the old task's `finally` pops
    the NEW attempt's task: a second cancel cannot stop it (it runs on, unstopped, though
    its slot was released and the run is recorded CANCELLED)."""
    plan = Plan("p", "1.0.0", jobs=(local_job("s", "slow_to_stop"),))
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        while not samples.EVENTS:
            await asyncio.sleep(0.005)
        await bs.engine.cancel(run_id)
        await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        await bs.engine.resume(plan, run_id, retry=True)
        while len([e for e in samples.EVENTS if e[0] == "start"]) < 2:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.4)  # the first attempt has finished stopping by now
        await bs.engine.cancel(run_id)
        await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        deadline = time.monotonic() + 2
        while len([e for e in samples.EVENTS if e[0] == "stopped"]) < 2 and \
                time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stopped = len([e for e in samples.EVENTS if e[0] == "stopped"])
        leftover = [t for t in asyncio.all_tasks()
                    if t is not asyncio.current_task() and "slow_to_stop" in repr(t)]
        for t in leftover:  # do not leave the unstopped attempt running after the test
            t.cancel()
    assert stopped == 2, "the retried run's attempt was not stopped by cancel"


# ------------------------------------------------------------ guards (verified to work)

async def test_guard_resume_mid_fan_out(make_baseshift: Any) -> None:
    """GUARD (passes): a run stored mid-fan-out (one instance done, one RUNNING, one
    RETRYING) resumes: the done one is kept, the lost attempt is replaced, the waiting retry
    runs, and the dependant gets every output."""
    from baseshift.core.expr import Attr
    from baseshift.core.records import AttemptRecord, Changes

    items = ListExpr((Literal("a"), Literal("b"), Literal("c")))
    fan = job("fan", "echo", args={"v": Name("x")}, fanout=FanOut("x", items),
              retry=RetryPolicy(retries=1, delay=0.0))
    plan = Plan("p", "1.0.0", jobs=(fan, job("after", "echo", needs=("fan",),
                                             args={"all": Attr(Name("fan"), "output")})))
    async with make_baseshift(store="sqlite") as bs:
        run_id = await bs.engine.submit(plan, {})
        await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        snap = await bs.store.load_run(run_id)
    lost = Changes()
    snap.run.state, snap.run.ended_at, snap.run.outputs = RunState.RUNNING, None, None
    parent = snap.jobs["fan"]
    parent.state, parent.output = JobState.RUNNING, ["a", "b", "c"]
    one, two = snap.jobs["fan[1]"], snap.jobs["fan[2]"]
    one.state, one.output = JobState.RUNNING, None
    two.state, two.output, two.failures = JobState.RETRYING, None, 1
    two.next_attempt_at = time.time()
    after = snap.jobs["after"]
    after.state, after.output, after.attempts = JobState.PENDING, None, 0
    for rec in (parent, one, two, after):
        lost.job(rec)
    lost.run(snap.run)
    lost.attempt(AttemptRecord(run_id, "fan[1]", 1, JobState.RUNNING, 1.0))
    lost.attempt(AttemptRecord(run_id, "fan[2]", 1, JobState.FAILED, 1.0, 2.0, "boom"))
    async with make_baseshift(store="sqlite") as bs:
        await bs.store.apply(lost)
        await bs.engine.resume(plan, run_id)
        record = await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        done = await bs.store.load_run(run_id)
    assert record.state is RunState.COMPLETED
    assert [len(done.attempts_of(f"fan[{i}]")) for i in range(3)] == [1, 2, 2]
    assert done.jobs["after"].output == {"all": [{"v": "a"}, {"v": "b"}, {"v": "c"}]}


async def test_guard_dependent_handlers_and_skipped_fan_out(make_baseshift: Any) -> None:
    """GUARD (passes): a fan-out whose every item is skipped finishes SKIPPED instead of
    hanging; handlers that need each other run in order, and a handler
    whose handler dependency fails is cancelled."""
    items = ListExpr((Literal(1), Literal(2)))
    fan = job("fan", "echo", args={"v": Name("x")}, fanout=FanOut("x", items),
              when=Binary("==", Name("x"), Literal(3)))
    plan = Plan("p", "1.0.0", jobs=(fan, job("bad", needs=("fan?",),
                                             args={"tag": "bad", "fail": True})),
                handlers=(job("h1", handler=True),
                          job("h2", needs=("h1",), handler=True),
                          job("h3", needs=("h4",), handler=True),
                          job("h4", handler=True, args={"tag": "h4", "fail": True})))
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        record = await asyncio.wait_for(bs.engine.wait(run_id), WAIT)
        snap = await bs.store.load_run(run_id)
    assert record.state is RunState.FAILED
    assert snap.jobs["fan"].state is JobState.SKIPPED
    assert {k: snap.jobs[k].state for k in ("h1", "h2", "h3", "h4")} == {
        "h1": JobState.SUCCEEDED, "h2": JobState.SUCCEEDED, "h3": JobState.CANCELLED,
        "h4": JobState.FAILED}
    starts = [n for kind, n, _ in samples.EVENTS if kind == "start"]
    assert starts.index("h1") < starts.index("h2")
