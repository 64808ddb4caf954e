"""The ready queue: ageing priority, concurrency limits, removal."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from baseshift.core.scheduler import ReadyQueue, effective_priority


def test_an_old_low_priority_job_overtakes_a_new_high_priority_one() -> None:
    q: ReadyQueue[str] = ReadyQueue(max_parallel=10)
    q.push("old", "wf", priority=0, ready_at=0.0)
    q.push("new", "wf", priority=5, ready_at=100.0)  # at t=100 "old" has aged to 10
    assert [q.pop(), q.pop()] == [("old", "wf"), ("new", "wf")]


def test_a_recent_high_priority_job_goes_first() -> None:
    q: ReadyQueue[str] = ReadyQueue(max_parallel=10)
    q.push("old", "wf", priority=0, ready_at=0.0)
    q.push("new", "wf", priority=5, ready_at=10.0)  # "old" has only aged to 1
    assert q.pop() == ("new", "wf")


@given(st.lists(st.tuples(st.integers(-10, 10), st.floats(0, 1000)), min_size=1, max_size=30),
       st.floats(1000, 5000))
def test_pop_order_is_effective_priority_at_any_instant(
        jobs: list[tuple[int, float]], now: float) -> None:
    q: ReadyQueue[int] = ReadyQueue(max_parallel=100)
    for i, (priority, ready_at) in enumerate(jobs):
        q.push(i, "wf", priority, ready_at)
    popped = [q.pop() for _ in jobs]
    scores = [effective_priority(jobs[i][0], jobs[i][1], now) for i, _ in popped]  # type: ignore[misc]
    assert all(a >= b - 1e-6 for a, b in zip(scores, scores[1:], strict=False))


def test_global_limit_and_release() -> None:
    q: ReadyQueue[str] = ReadyQueue(max_parallel=1)
    q.push("a", "wf", 0, 0)
    q.push("b", "wf", 0, 0)
    assert q.pop() == ("a", "wf")
    assert q.pop() is None
    q.release("wf")
    assert q.pop() == ("b", "wf")


def test_a_workflow_at_its_limit_does_not_block_others() -> None:
    q: ReadyQueue[str] = ReadyQueue(max_parallel=10)
    q.set_limit("busy", 1)
    for name in ("b1", "b2", "b3"):
        q.push(name, "busy", 9, 0)
    q.push("other", "calm", 0, 0)
    assert q.pop() == ("b1", "busy")
    assert q.pop() == ("other", "calm")
    assert q.pop() is None
    q.release("busy")
    assert q.pop() == ("b2", "busy")


def test_remove_drops_queued_items() -> None:
    q: ReadyQueue[tuple[str, str]] = ReadyQueue(max_parallel=10)
    for key in ("x", "y"):
        q.push(("run1", key), "wf", 0, 0)
    q.push(("run2", "z"), "wf", 0, 0)
    assert sorted(q.remove(lambda item: item[0] == "run1")) == [("run1", "x"), ("run1", "y")]
    assert len(q) == 1 and q.pop() == (("run2", "z"), "wf")
