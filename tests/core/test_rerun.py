"""Re-run from a job: that job and its dependants run again, other successes are reused."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from baseshift.core.states import JobState, RunState

RAN: list[str] = []
BLOCKED: set[str] = set()
LIST: dict[str, list[int]] = {"items": []}


async def step(tag: str) -> str:
    RAN.append(tag)
    while tag in BLOCKED:
        await asyncio.sleep(0.01)
    return tag


def items() -> list[int]:
    return LIST["items"]


def square(x: int) -> int:
    return x * x


CHAIN = """workflow chain {
  version "1.0.0"
  job a uses python { with { function: "test_rerun:step", tag: "a" } }
  job b uses python { needs a  with { function: "test_rerun:step", tag: "b" } }
  job c uses python { needs b  with { function: "test_rerun:step", tag: "c" } }
}
"""

FANOUT = """workflow fan {
  version "1.0.0"
  job numbers uses python { with { function: "test_rerun:items" } }
  job sq uses python {
    needs numbers
    for x in numbers.output
    with { function: "test_rerun:square", x: x }
  }
  output { squares: sq.output }
}
"""


def _plan(bs: Any, tmp_path: Path, source: str) -> Any:
    path = tmp_path / "flow.bsw"
    path.write_text(source)
    return bs.load_workflow(path)


async def _until(predicate: Any) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_rerun_from_a_job_keeps_upstream_results(make_baseshift: Any,
                                                       tmp_path: Path) -> None:
    RAN.clear()
    async with make_baseshift(store="sqlite") as bs:
        plan = _plan(bs, tmp_path, CHAIN)
        run_id = await bs.engine.submit(plan, {})
        await bs.engine.wait(run_id)
        await bs.engine.rerun_from(plan, run_id, "b")
        final = await bs.engine.wait(run_id)
        snapshot = await bs.store.load_run(run_id)
    assert final.state is RunState.COMPLETED
    assert RAN == ["a", "b", "c", "b", "c"]
    assert [j.attempts for j in snapshot.jobs.values()] == [1, 2, 2]


async def test_rerun_in_a_cancelled_run_also_reruns_what_never_succeeded(
        make_baseshift: Any, tmp_path: Path) -> None:
    """Cancelled while `a` ran: re-running from `c` must run `a` and `b` too, not report a
    completed run whose jobs never ran."""
    RAN.clear()
    BLOCKED.add("a")
    async with make_baseshift(store="memory") as bs:
        plan = _plan(bs, tmp_path, CHAIN)
        run_id = await bs.engine.submit(plan, {})
        await _until(lambda: "a" in RAN)
        await bs.engine.cancel(run_id)
        assert (await bs.engine.wait(run_id)).state is RunState.CANCELLED
        BLOCKED.clear()
        await bs.engine.rerun_from(plan, run_id, "c")
        final = await bs.engine.wait(run_id)
        snapshot = await bs.store.load_run(run_id)
    assert final.state is RunState.COMPLETED
    assert {k: j.state for k, j in snapshot.jobs.items()} == {
        "a": JobState.SUCCEEDED, "b": JobState.SUCCEEDED, "c": JobState.SUCCEEDED}


async def test_rerun_with_a_shorter_fanout_list_drops_the_extra_items(
        make_baseshift: Any, tmp_path: Path) -> None:
    LIST["items"] = [1, 2, 3]
    async with make_baseshift(store="sqlite") as bs:
        plan = _plan(bs, tmp_path, FANOUT)
        run_id = await bs.engine.submit(plan, {})
        assert (await bs.engine.wait(run_id)).outputs == {"squares": [1, 4, 9]}
        LIST["items"] = [5, 6]
        await bs.engine.rerun_from(plan, run_id, "numbers")
        final = await bs.engine.wait(run_id)
        snapshot = await bs.store.load_run(run_id)
    assert final.state is RunState.COMPLETED
    assert final.outputs == {"squares": [25, 36]}
    assert snapshot.jobs["sq[2]"].state is JobState.SKIPPED
    assert all(j.state.finished for j in snapshot.jobs.values())
