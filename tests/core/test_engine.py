"""Engine semantics: ordering, skips, retries, timeouts, cancel, retry-from-failed, handlers."""
from __future__ import annotations

import asyncio
from typing import Any

import engine_samples as samples
import pytest
from plans import job

from baseshift.core.expr import Attr, Binary, Literal, Name
from baseshift.core.plan import FanOut, Plan, RetryPolicy
from baseshift.core.states import JobState, RunState


async def run_plan(make_baseshift: Any, plan: Plan, inputs: dict[str, Any] | None = None,
                   **settings: Any) -> Any:
    async with make_baseshift(**settings) as bs:
        run_id = await bs.engine.submit(plan, inputs or {})
        await bs.engine.wait(run_id)
        return await bs.store.load_run(run_id)


def started(tag: str) -> int:
    return next(t for kind, name, t in samples.EVENTS if kind == "start" and name == tag)


def ended(tag: str) -> int:
    return next(t for kind, name, t in samples.EVENTS if kind == "end" and name == tag)


async def test_jobs_run_once_in_dependency_order(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(job("a"), job("b", needs=("a",)), job("c", needs=("a",)),
                                    job("d", needs=("b", "c"))))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.COMPLETED
    assert [e[1] for e in samples.EVENTS if e[0] == "start"].count("d") == 1
    assert ended("a") < started("b") and ended("a") < started("c")
    assert max(ended("b"), ended("c")) < started("d")
    assert {k: j.state for k, j in snap.jobs.items()} == dict.fromkeys("abcd", JobState.SUCCEEDED)


async def test_outputs_flow_to_dependants_and_workflow_outputs(make_baseshift: Any) -> None:
    upstream = Attr(Attr(Name("a"), "output"), "tag")
    plan = Plan("p", "1.0.0", jobs=(job("a"), job("b", "echo", needs=("a",),
                                                    args={"got": upstream})),
                outputs=(("result", Attr(Name("b"), "output")),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.jobs["b"].output == {"got": "a"}
    assert snap.run.outputs == {"result": {"got": "a"}}


async def test_false_condition_skips_and_skipping_propagates(make_baseshift: Any) -> None:
    never = Binary("==", Literal(1), Literal(2))
    plan = Plan("p", "1.0.0", jobs=(
        job("a"), job("b", needs=("a",), when=never), job("c", needs=("b",)),
        job("d", needs=("a", "b?")), job("e", needs=("c",))))
    snap = await run_plan(make_baseshift, plan)
    states = {k: j.state for k, j in snap.jobs.items()}
    assert states == {"a": JobState.SUCCEEDED, "b": JobState.SKIPPED, "c": JobState.SKIPPED,
                      "d": JobState.SUCCEEDED, "e": JobState.SKIPPED}
    assert {e[1] for e in samples.EVENTS} == {"a", "d"}
    assert snap.run.state is RunState.COMPLETED


async def test_failure_cancels_downstream_runs_other_branches_and_fails_run(
        make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(
        job("a", args={"tag": "a", "fail": True}), job("b", needs=("a",)), job("c")))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.FAILED
    assert "a failed on purpose" in snap.run.error
    assert snap.jobs["b"].state is JobState.CANCELLED
    assert snap.jobs["c"].state is JobState.SUCCEEDED


async def test_retries_use_backoff_then_succeed(make_baseshift: Any) -> None:
    policy = RetryPolicy(retries=3, delay=0.01, factor=2.0)
    plan = Plan("p", "1.0.0", jobs=(job("f", "fail_until", args={"tag": "f", "times": 2},
                                        retry=policy),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.COMPLETED
    attempts = snap.attempts_of("f")
    assert [a.state for a in attempts] == [JobState.FAILED, JobState.FAILED, JobState.SUCCEEDED]
    assert attempts[1].started_at - attempts[0].ended_at >= 0.01
    assert attempts[2].started_at - attempts[1].ended_at >= 0.02


def test_a_late_retry_of_a_long_retry_series_waits_the_max_delay() -> None:
    """retry 2000: the 1,100th delay is far past max_delay; it must not overflow a float."""
    policy = RetryPolicy(retries=2000, delay=1.0, factor=2.0, max_delay=300.0, jitter=0.1)
    assert policy.delay_before(1100) <= 330.0
    assert RetryPolicy(retries=2000, max_delay=300.0).delay_before(2000) == 300.0


async def test_retries_exhausted_fail_the_job(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(job("f", "fail_until", args={"tag": "f", "times": 9},
                                        retry=RetryPolicy(retries=2, delay=0.001)),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.jobs["f"].state is JobState.FAILED
    assert len(snap.attempts_of("f")) == 3
    assert "failure 3 of 9" in snap.jobs["f"].error


async def test_a_waiting_retry_does_not_block_other_jobs(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(
        job("slow", "fail_until", args={"tag": "slow", "times": 1},
            retry=RetryPolicy(retries=1, delay=0.3)),
        job("other")))
    snap = await run_plan(make_baseshift, plan, max_parallel=1)
    assert snap.jobs["other"].ended_at < snap.attempts_of("slow")[1].started_at


async def test_timeout_stops_the_attempt(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(job("h", "hang", timeout=0.05,
                                        retry=RetryPolicy(retries=1, delay=0.0)),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.jobs["h"].state is JobState.FAILED
    assert [a.error for a in snap.attempts_of("h")] == ["timed out after 0.05s"] * 2
    assert [e[0] for e in samples.EVENTS] == ["start", "stopped", "start", "stopped"]


async def test_cancel_stops_running_attempts(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(job("h", "hang"), job("after", needs=("h",))))
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        while not samples.EVENTS:
            await asyncio.sleep(0.005)
        assert await bs.engine.cancel(run_id)
        record = await bs.engine.wait(run_id)
        snap = await bs.store.load_run(run_id)
    assert record.state is RunState.CANCELLED
    assert snap.jobs["h"].state is JobState.CANCELLED
    assert snap.jobs["after"].state is JobState.CANCELLED
    assert snap.attempts_of("h")[0].state is JobState.CANCELLED
    assert ("stopped", "h") in [(k, t) for k, t, _ in samples.EVENTS]


async def test_retry_from_failed_keeps_successful_jobs(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(job("ok"), job("broken", "switch", needs=("ok",),
                                                    args={"tag": "broken"}),
                                    job("last", needs=("broken",))))
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        assert (await bs.engine.wait(run_id)).state is RunState.FAILED
        samples.FLAGS["broken"] = True
        await bs.engine.resume(plan, run_id, retry=True)
        assert (await bs.engine.wait(run_id)).state is RunState.COMPLETED
        snap = await bs.store.load_run(run_id)
    assert len(snap.attempts_of("ok")) == 1
    assert [a.state for a in snap.attempts_of("broken")] == [JobState.FAILED, JobState.SUCCEEDED]
    assert snap.jobs["last"].state is JobState.SUCCEEDED


async def test_failure_handlers_run_when_the_workflow_fails(make_baseshift: Any) -> None:
    failed_jobs = Attr(Name("failure"), "jobs")
    handler = job("page", "echo", args={"jobs": failed_jobs}, handler=True)
    plan = Plan("p", "1.0.0", jobs=(job("a", args={"tag": "a", "fail": True}),),
                handlers=(handler,))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.FAILED
    assert snap.jobs["page"].state is JobState.SUCCEEDED
    assert snap.jobs["page"].output == {"jobs": ["a"]}


async def test_failure_handlers_are_skipped_when_the_workflow_succeeds(
        make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(job("a"),), handlers=(job("page", handler=True),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.COMPLETED
    assert snap.jobs["page"].state is JobState.SKIPPED


async def test_fan_out_runs_one_instance_per_item_and_collects_outputs(
        make_baseshift: Any) -> None:
    from baseshift.core.plan import InputSpec
    from baseshift.core.schema import STRING, list_of

    fan = job("fan", "echo", args={"v": Name("x")},
              fanout=FanOut("x", Attr(Name("input"), "items")))
    plan = Plan("p", "1.0.0", inputs=(InputSpec("items", list_of(STRING)),),
                jobs=(fan, job("join", "echo", needs=("fan",),
                               args={"all": Attr(Name("fan"), "output")})))
    snap = await run_plan(make_baseshift, plan, {"items": ["a", "b", "c"]})
    assert snap.jobs["join"].output == {"all": [{"v": "a"}, {"v": "b"}, {"v": "c"}]}
    assert [snap.jobs[f"fan[{i}]"].state for i in range(3)] == [JobState.SUCCEEDED] * 3


async def test_fan_out_over_empty_list_succeeds_with_empty_output(make_baseshift: Any) -> None:
    from baseshift.core.expr import ListExpr

    plan = Plan("p", "1.0.0", jobs=(job("fan", fanout=FanOut("x", ListExpr(()))),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.jobs["fan"].state is JobState.SUCCEEDED
    assert snap.jobs["fan"].output == []


async def test_priority_orders_ready_jobs(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=tuple(job(f"j{p}", priority=p) for p in (1, 5, 3, 9)))
    await run_plan(make_baseshift, plan, max_parallel=1)
    order = [name for kind, name, _ in samples.EVENTS if kind == "start"]
    assert order == ["j9", "j5", "j3", "j1"]


async def test_workflow_concurrency_limit_is_respected(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", concurrency=2, jobs=tuple(job(f"j{i}") for i in range(8)))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.COMPLETED
    assert samples.ACTIVE["peak"] <= 2


async def test_bad_inputs_are_refused_before_anything_is_stored(make_baseshift: Any) -> None:
    from baseshift.core.errors import InputError
    from baseshift.core.plan import InputSpec
    from baseshift.core.schema import NUMBER

    plan = Plan("p", "1.0.0", inputs=(InputSpec("amount", NUMBER),), jobs=(job("a"),))
    async with make_baseshift() as bs:
        with pytest.raises(InputError, match="input 'amount' must be a number"):
            await bs.engine.submit(plan, {"amount": "lots"})
        with pytest.raises(InputError, match="unknown input 'amont'") as info:
            await bs.engine.submit(plan, {"amont": 1})
        assert info.value.hint == "did you mean 'amount'?"
        assert await bs.store.list_runs() == []


async def test_expression_error_fails_job_without_retry(make_baseshift: Any) -> None:
    from baseshift.core.expr import Index, ListExpr

    bad = Index(ListExpr(()), Literal(3))
    plan = Plan("p", "1.0.0", jobs=(job("a", "echo", args={"v": bad},
                                        retry=RetryPolicy(retries=3, delay=0)),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.jobs["a"].state is JobState.FAILED
    assert len(snap.attempts_of("a")) == 1
    assert "index 3 is out of range" in snap.jobs["a"].error


async def test_secrets_reach_the_job_but_are_not_stored(make_baseshift: Any,
                                                        monkeypatch: Any) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_TOKEN", "s3cr3t")
    plan = Plan("p", "1.0.0", jobs=(
        job("a", "echo", args={"t": Attr(Name("secret"), "TOKEN")}),
        job("b", "measure", args={"t": Attr(Name("secret"), "TOKEN")})))
    snap = await run_plan(make_baseshift, plan)
    assert snap.jobs["b"].output == {"t": 6}  # the job got the value...
    assert snap.jobs["a"].output == {"t": "***"}  # ...and echoing it stores only the mask
    assert snap.jobs["a"].inputs == {"function": "engine_samples:echo", "t": "***"}


async def test_mask_secrets_false_really_leaves_secrets_in_clear(make_baseshift: Any,
                                                                  monkeypatch: Any) -> None:
    """The dangerous setting does what it says (the compliance report flags it): what a job
    leaves behind keeps the secret; the stored inputs still never hold it."""
    monkeypatch.setenv("BASESHIFT_SECRET_TOKEN", "s3cr3t")
    plan = Plan("p", "1.0.0", jobs=(job("a", "echo", args={"t": Attr(Name("secret"), "TOKEN")}),))
    snap = await run_plan(make_baseshift, plan, mask_secrets=False)
    assert snap.jobs["a"].output == {"t": "s3cr3t"}
    assert snap.jobs["a"].inputs == {"function": "engine_samples:echo", "t": "***"}


async def test_missing_secret_fails_with_a_hint(make_baseshift: Any) -> None:
    plan = Plan("p", "1.0.0", jobs=(job("a", "echo",
                                        args={"t": Attr(Name("secret"), "NOPE_NOT_SET")}),))
    snap = await run_plan(make_baseshift, plan)
    assert "secret 'NOPE_NOT_SET' is not set" in snap.jobs["a"].error


async def test_retry_of_a_failed_fan_out_reruns_only_failed_instances(
        make_baseshift: Any) -> None:
    from baseshift.core.expr import ListExpr

    items = ListExpr((Literal("ok"), Literal("bad"), Literal("ok2")))
    fan = job("fan", "switch", args={"tag": Name("t")}, fanout=FanOut("t", items))
    plan = Plan("p", "1.0.0", jobs=(fan, job("after", needs=("fan",))))
    samples.FLAGS.update(ok=True, ok2=True)
    async with make_baseshift() as bs:
        run_id = await bs.engine.submit(plan, {})
        assert (await bs.engine.wait(run_id)).state is RunState.FAILED
        samples.FLAGS["bad"] = True
        await bs.engine.resume(plan, run_id, retry=True)
        assert (await bs.engine.wait(run_id)).state is RunState.COMPLETED
        snap = await bs.store.load_run(run_id)
    assert [len(snap.attempts_of(f"fan[{i}]")) for i in range(3)] == [1, 2, 1]
    assert snap.jobs["fan"].output == ["fixed", "fixed", "fixed"]
    assert snap.jobs["after"].state is JobState.SUCCEEDED


async def test_resume_after_a_lost_process_starts_a_new_attempt(make_baseshift: Any,
                                                                 tmp_path: Any) -> None:
    """What `baseshift resume` does after kill -9, without killing anything: the store says
    a job is RUNNING but no process runs it."""
    plan = Plan("p", "1.0.0", jobs=(job("a"), job("b", needs=("a",))))
    async with make_baseshift(store="sqlite") as bs:
        run_id = await bs.engine.submit(plan, {})
        await bs.engine.wait(run_id)
        snap = await bs.store.load_run(run_id)
    from baseshift.core.records import AttemptRecord, Changes

    lost = Changes()
    snap.run.state, snap.run.ended_at = RunState.RUNNING, None
    b = snap.jobs["b"]
    b.state, b.attempts, b.output = JobState.RUNNING, 1, None
    lost.run(snap.run)
    lost.job(b)
    lost.attempt(AttemptRecord(run_id, "b", 1, JobState.RUNNING, 1.0))
    samples.reset()
    async with make_baseshift(store="sqlite") as bs:
        await bs.store.apply(lost)
        await bs.engine.resume(plan, run_id)
        assert (await bs.engine.wait(run_id)).state is RunState.COMPLETED
        after = await bs.store.load_run(run_id)
    assert [e[1] for e in samples.EVENTS if e[0] == "start"] == ["b"]
    attempts = after.attempts_of("b")
    assert [a.state for a in attempts] == [JobState.CANCELLED, JobState.SUCCEEDED]
    assert "interrupted" in (attempts[0].error or "")


async def test_handlers_run_when_a_job_fails_before_it_could_start(make_baseshift: Any) -> None:
    """A job whose inputs cannot be evaluated fails while being dispatched; the handlers
    that this makes ready must still be started in the same round."""
    from baseshift.core.expr import Index, ListExpr

    bad = job("a", "echo", args={"v": Index(ListExpr(()), Literal(0))})
    plan = Plan("p", "1.0.0", jobs=(bad,), handlers=(job("page", handler=True),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.FAILED
    assert snap.jobs["page"].state is JobState.SUCCEEDED


async def test_an_internal_error_in_one_run_does_not_stop_the_others(
        make_baseshift: Any, monkeypatch: Any) -> None:
    from baseshift.core.runstate import ActiveRun

    original = ActiveRun.activate

    def activate(self: ActiveRun, fx: Any) -> None:
        if self.plan.name == "broken":
            raise RuntimeError("bug")
        original(self, fx)

    monkeypatch.setattr(ActiveRun, "activate", activate)
    async with make_baseshift() as bs:
        bad = await bs.engine.submit(Plan("broken", "1.0.0", jobs=(job("x"),)), {})
        good = await bs.engine.submit(Plan("fine", "1.0.0", jobs=(job("y"),)), {})
        with pytest.raises(RuntimeError, match="bug"):
            await bs.engine.wait(bad)
        assert (await bs.engine.wait(good)).state is RunState.COMPLETED


async def test_handlers_run_when_the_workflow_outputs_cannot_be_evaluated(
        make_baseshift: Any) -> None:
    from baseshift.core.expr import Index, ListExpr

    plan = Plan("p", "1.0.0", jobs=(job("a"),),
                outputs=(("x", Index(ListExpr(()), Literal(1))),),
                handlers=(job("page", "echo", args={"why": Attr(Name("failure"), "error")},
                              handler=True),))
    snap = await run_plan(make_baseshift, plan)
    assert snap.run.state is RunState.FAILED
    assert snap.run.error.startswith("workflow outputs could not be evaluated")
    assert snap.jobs["page"].output["why"] == snap.run.error
