"""Property tests on random DAGs: the engine agrees with a reference model of the rules."""
from __future__ import annotations

import asyncio
from pathlib import Path

import engine_samples as samples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plans import job

from baseshift.core.app.application import BaseShift
from baseshift.core.expr import Binary, Index, ListExpr, Literal
from baseshift.core.plan import Plan
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState

NEVER = Binary("==", Literal(1), Literal(2))
BROKEN = Index(ListExpr(()), Literal(0))  # an input that cannot be evaluated


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[tuple[str, tuple[str, ...], int, bool, bool]], int]:
    """Random DAGs: (name, needs, how it fails, condition false, optional needs?) per job."""
    n = draw(st.integers(1, 12))
    jobs = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        optional = draw(st.booleans())
        needs = tuple(f"j{d}" + ("?" if optional and k == 0 else "") for k, d in enumerate(deps))
        # fails: 0 = no, 1 = the function raises, 2 = its inputs cannot be evaluated
        fails = draw(st.sampled_from([0, 0, 0, 0, 1, 2]))
        jobs.append((f"j{i}", needs, fails, draw(st.integers(0, 5)) == 0, optional))
    return jobs, draw(st.integers(1, 4))


def expected_states(jobs: list[tuple[str, tuple[str, ...], int, bool, bool]]
                    ) -> dict[str, JobState]:
    """The rules, written independently of the engine."""
    out: dict[str, JobState] = {}
    for name, needs, fails, skip, _ in jobs:
        deps = [(d.rstrip("?"), d.endswith("?")) for d in needs]
        if any(out[d] in (JobState.FAILED, JobState.CANCELLED) for d, _ in deps):
            out[name] = JobState.CANCELLED
        elif any(out[d] is JobState.SKIPPED and not opt for d, opt in deps):
            out[name] = JobState.SKIPPED
        elif skip:
            out[name] = JobState.SKIPPED
        else:
            out[name] = JobState.FAILED if fails else JobState.SUCCEEDED
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_random_dags_follow_the_rules(case: object) -> None:
    spec, parallel = case  # type: ignore[misc]
    samples.reset()
    plan = Plan("random", "1.0.0", jobs=tuple(
        job(name, needs=needs, when=NEVER if skip else None,
            args={"tag": name, "fail": fails == 1, "x": BROKEN if fails == 2 else Literal(0)})
        for name, needs, fails, skip, _ in spec), handlers=(job("handler", handler=True),))
    snap = asyncio.run(_run(plan, parallel))
    expected = expected_states(spec)
    failed = any(s is JobState.FAILED for s in expected.values())
    expected["handler"] = JobState.SUCCEEDED if failed else JobState.SKIPPED
    assert {k: j.state for k, j in snap.jobs.items()} == expected
    ran = [name for kind, name, _ in samples.EVENTS if kind == "start"]
    broken = {name for name, _, fails, _, _ in spec if fails == 2}
    should_run = [n for n, s in expected.items()
                  if s in (JobState.SUCCEEDED, JobState.FAILED) and n not in broken]
    assert sorted(ran) == sorted(should_run)  # each exactly once, skipped ones never
    times = {(kind, name): t for kind, name, t in samples.EVENTS}
    for name, needs, *_ in spec:
        for dep in needs:
            if ("start", name) in times and ("start", dep.rstrip("?")) in times:
                assert times[("end", dep.rstrip("?"))] < times[("start", name)]
    assert snap.run.state is (RunState.FAILED if failed else RunState.COMPLETED)


async def _run(plan: Plan, parallel: int) -> object:
    bs = BaseShift(Settings(store="memory", data_dir=Path("/nonexistent"),
                            load_entrypoints=False, max_parallel=parallel))
    async with bs:
        run_id = await bs.engine.submit(plan, {})
        await asyncio.wait_for(bs.engine.wait(run_id), 20)  # a hang is a failure, not a stall
        return await bs.store.load_run(run_id)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.booleans()),
                min_size=1, max_size=8),
       st.integers(1, 3))
def test_retries_give_each_job_exactly_its_allowed_attempts(
        jobs: list[tuple[int, int, bool]], parallel: int) -> None:
    """Job i fails its first `fails` attempts and may retry `retries` times; a chained job
    needs the one before it."""
    from baseshift.core.plan import RetryPolicy

    samples.reset()
    specs = []
    for i, (fails, retries, chained) in enumerate(jobs):
        needs = (f"j{i - 1}",) if chained and i else ()
        specs.append(job(f"j{i}", "fail_until", needs=needs,
                         args={"tag": f"j{i}", "times": fails},
                         retry=RetryPolicy(retries=retries, delay=0.0)))
    snap = asyncio.run(_run(Plan("retries", "1.0.0", jobs=tuple(specs)), parallel))
    for i, (fails, retries, chained) in enumerate(jobs):
        record = snap.jobs[f"j{i}"]
        upstream = snap.jobs.get(f"j{i - 1}") if chained and i else None
        if upstream is not None and upstream.state is not JobState.SUCCEEDED:
            assert record.state is JobState.CANCELLED and record.attempts == 0
            continue
        assert record.attempts == min(fails, retries) + 1
        assert record.state is (JobState.SUCCEEDED if fails <= retries else JobState.FAILED)
        assert samples.FLAGS.get(f"j{i}", 0) == record.attempts  # ran once per attempt
