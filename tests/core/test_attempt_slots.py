"""Attempt slots: the best ready jobs begin while slots are free; every slot is freed once."""
from __future__ import annotations

from active_runs import NOW, started
from plans import job

from baseshift.core.attempt_slots import AttemptSlots
from baseshift.core.expr import Name
from baseshift.core.plan import Plan
from baseshift.core.runstate import ActiveRun, Effects
from baseshift.core.states import JobState

THREE = Plan("p", "1.0.0", jobs=(job("low", priority=1), job("high", priority=9),
                                 job("mid", priority=5)))


def offered(slots: AttemptSlots, *runs: tuple[ActiveRun, Effects]) -> dict[str, ActiveRun]:
    for _, fx in runs:
        for run, key in fx.ready:
            slots.offer(run, key, fx.now)
    return {run.id: run for run, _ in runs}


def test_fill_begins_the_best_jobs_up_to_max_parallel() -> None:
    slots, (run, fx) = AttemptSlots(2), started(THREE)
    runs = offered(slots, (run, fx))
    launches = slots.fill(runs, fx)
    assert [x.key for x in launches] == ["high", "mid"]
    assert [x.number for x in launches] == [1, 1]
    assert run.jobs["low"].state is JobState.READY
    assert slots.fill(runs, fx) == []
    slots.release("r1", "high", 1)
    assert [x.key for x in slots.fill(runs, fx)] == ["low"]


def test_a_workflow_limit_holds_back_only_that_workflow() -> None:
    slots = AttemptSlots(10)
    limited, other = started(THREE, "r1"), started(Plan("q", "1.0.0", jobs=(job("a"),)), "r2")
    slots.limit("p", 1)
    runs = offered(slots, limited, other)
    assert sorted((x.run.id, x.key) for x in slots.fill(runs, limited[1])) == [
        ("r1", "high"), ("r2", "a")]


def test_a_slot_is_freed_once_however_often_it_is_released() -> None:
    slots, (run, fx) = AttemptSlots(1), started(THREE)
    runs = offered(slots, (run, fx))
    assert [x.key for x in slots.fill(runs, fx)] == ["high"]
    slots.release("r1", "high", 1)
    slots.release("r1", "high", 1)  # a cancel and the attempt's end both free it
    assert [x.key for x in slots.fill(runs, fx)] == ["mid"]
    assert slots.fill(runs, fx) == []


def test_a_job_no_longer_ready_gives_its_slot_back() -> None:
    slots = AttemptSlots(1)
    first, second = started(THREE, "r1"), started(Plan("q", "1.0.0", jobs=(job("a"),)), "r2")
    runs = offered(slots, first, second)
    first[0].cancel(first[1])
    assert [(x.run.id, x.key) for x in slots.fill(runs, first[1])] == [("r2", "a")]


def test_a_job_failing_before_it_starts_gives_its_slot_back() -> None:
    plan = Plan("p", "1.0.0", jobs=(job("bad", priority=9, args={"tag": Name("nowhere")}),
                                    job("good")))
    slots, (run, fx) = AttemptSlots(1), started(plan)
    launches = slots.fill(offered(slots, (run, fx)), fx)
    assert [x.key for x in launches] == ["good"]
    assert run.jobs["bad"].state is JobState.FAILED


def test_forget_drops_the_queued_jobs_and_frees_the_slots_of_a_run() -> None:
    slots = AttemptSlots(1)
    gone, stays = started(THREE, "r1"), started(Plan("q", "1.0.0", jobs=(job("a"),)), "r2")
    runs = offered(slots, gone, stays)
    assert [x.run.id for x in slots.fill(runs, gone[1])] == ["r1"]
    slots.forget("r1")
    assert [(x.run.id, x.key) for x in slots.fill(runs, gone[1])] == [("r2", "a")]


def test_drop_queued_keeps_the_slots_held() -> None:
    slots, (run, fx) = AttemptSlots(1), started(THREE)
    runs = offered(slots, (run, fx))
    assert [x.key for x in slots.fill(runs, fx)] == ["high"]
    slots.drop_queued("r1")
    assert slots.fill(runs, fx) == []  # "high" still holds the only slot
    slots.release("r1", "high", 1)
    assert slots.fill(runs, fx) == []  # and nothing of r1 is queued any more


def test_offer_orders_by_priority_and_age() -> None:
    slots, (run, fx) = AttemptSlots(1), started(Plan("p", "1.0.0", jobs=(
        job("old", priority=0), job("new", priority=5))))
    run.jobs["old"].ready_at = NOW - 100  # ageing: 100 s waited is worth 10 priority points
    launches = slots.fill(offered(slots, (run, fx)), fx)
    assert [x.key for x in launches] == ["old"]


def test_dispatch_begins_the_jobs_made_ready_by_a_job_failing_before_it_starts() -> None:
    plan = Plan("p", "1.0.0", jobs=(job("bad", args={"tag": Name("nowhere")}),),
                handlers=(job("on_failure", handler=True),))
    slots, (run, fx) = AttemptSlots(1), started(plan)
    launches = slots.dispatch({run.id: run}, fx)
    assert [x.key for x in launches] == ["on_failure"]
    assert run.jobs["bad"].state is JobState.FAILED
