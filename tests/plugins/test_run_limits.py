"""Keyed run limits (`runs N per KEY on conflict POLICY`, the `run_limits` plugin) with a
real engine and stores, reached through the run service as the API and triggers reach them.

Jobs use a `gate` executor that waits until the test opens the gate of its run, so which
runs are unfinished at each step is decided by the test, never by timing.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import Conflict, InputError
from baseshift.core.events import RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.plan import Plan
from baseshift.core.protocols import JobContext, JobResult
from baseshift.core.records import RunRecord
from baseshift.core.states import RunState
from baseshift.plugins.limits.admission import Admission
from baseshift.plugins.limits.run_limits import STASH_KEY

DEADLINE = 30.0
"""Guards against a hang only; no test asserts how long anything takes."""


class GateExecutor:
    """`uses gate`: the attempt waits until the test opens the gate of its run."""

    name: ClassVar[str] = "gate"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    gates: ClassVar[dict[str, asyncio.Event]] = {}
    started: ClassVar[dict[str, asyncio.Event]] = {}

    async def execute(self, ctx: JobContext) -> JobResult:
        _event(self.started, ctx.run_id).set()
        await _event(self.gates, ctx.run_id).wait()
        return JobResult({"run": ctx.run_id})


def _event(table: dict[str, asyncio.Event], run_id: str) -> asyncio.Event:
    return table.setdefault(run_id, asyncio.Event())


class GatePlugin:
    @hookimpl
    def register_executors(self) -> list[type[Any]]:
        return [GateExecutor]


@pytest.fixture(autouse=True)
def _clean_gates() -> None:
    GateExecutor.gates.clear()
    GateExecutor.started.clear()


def workflow(tmp_path: Path, runs: str) -> Path:
    path = tmp_path / "flows" / "keyed.bsw"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        "workflow keyed {\n"
        '  version "1.0.0"\n'
        '  input { customer: string = "acme", n: integer = 0 }\n'
        f"  {runs}\n"
        "  job work uses gate { }\n"
        "}\n", encoding="utf-8")
    return path


def limits_of(bs: BaseShift) -> Admission:
    """The application's admission: its queues."""
    return bs.stash[STASH_KEY]


async def state_of(bs: BaseShift, run_id: str) -> RunRecord:
    snapshot = await bs.store.load_run(run_id)
    assert snapshot is not None
    return snapshot.run


async def until(bs: BaseShift, run_id: str, check: Callable[[RunRecord], bool]) -> RunRecord:
    """Wait until the stored run passes `check` (subscribed first, so nothing is missed)."""
    async def wait() -> RunRecord:
        async with bs.live.subscribe(run_id) as events:
            while not check(run := await state_of(bs, run_id)):
                await events.__anext__()
            return run
    return await asyncio.wait_for(wait(), DEADLINE)


async def running(bs: BaseShift, run_id: str) -> None:
    """The run's job has started (so the run is RUNNING and holds its place)."""
    await asyncio.wait_for(_event(GateExecutor.started, run_id).wait(), DEADLINE)


async def finish(bs: BaseShift, run_id: str) -> RunRecord:
    _event(GateExecutor.gates, run_id).set()
    return await until(bs, run_id, lambda r: r.state.finished)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_no_limit_starts_every_run(make_baseshift: Any, tmp_path: Path,
                                         store: str) -> None:
    path = workflow(tmp_path, "")
    async with make_baseshift(store=store, plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        ids = [await bs.runs.start_plan(plan, {}) for _ in range(3)]
        for run_id in ids:
            await running(bs, run_id)
        for run_id in ids:
            assert (await finish(bs, run_id)).state is RunState.COMPLETED


async def test_queue_waits_for_the_run_with_the_same_key(make_baseshift: Any, tmp_path: Path,
                                                         store: str) -> None:
    path = workflow(tmp_path, "runs 1 per input.customer on conflict queue")
    async with make_baseshift(store=store, plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        first = await bs.runs.start_plan(plan, {"customer": "acme"})
        second = await bs.runs.start_plan(plan, {"customer": "acme"})
        third = await bs.runs.start_plan(plan, {"customer": "acme"})
        other = await bs.runs.start_plan(plan, {"customer": "globex"})
        await running(bs, first)
        await running(bs, other)
        assert limits_of(bs).queued("keyed") == [second, third]
        assert (await state_of(bs, second)).state is RunState.INITIALIZED
        assert second not in bs.engine.runs

        assert (await finish(bs, first)).state is RunState.COMPLETED
        await running(bs, second)
        assert limits_of(bs).queued() == [third]
        assert (await state_of(bs, third)).state is RunState.INITIALIZED

        await finish(bs, second)
        await running(bs, third)
        assert limits_of(bs).queued() == []
        for run_id in (third, other):
            assert (await finish(bs, run_id)).state is RunState.COMPLETED


async def test_queue_moves_when_the_running_run_is_cancelled(make_baseshift: Any,
                                                            tmp_path: Path) -> None:
    path = workflow(tmp_path, "runs 1")
    async with make_baseshift(plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        first = await bs.runs.start_plan(plan, {})
        second = await bs.runs.start_plan(plan, {})
        await running(bs, first)
        await bs.runs.cancel(first)
        await running(bs, second)
        assert (await finish(bs, second)).state is RunState.COMPLETED


async def test_a_cancelled_queued_run_is_skipped(make_baseshift: Any, tmp_path: Path) -> None:
    path = workflow(tmp_path, "runs 1")
    async with make_baseshift(plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        first = await bs.runs.start_plan(plan, {})
        second = await bs.runs.start_plan(plan, {})
        third = await bs.runs.start_plan(plan, {})
        await running(bs, first)
        await bs.runs.cancel(second)
        assert (await state_of(bs, second)).state is RunState.CANCELLED
        await finish(bs, first)
        await running(bs, third)
        assert (await state_of(bs, second)).state is RunState.CANCELLED
        await finish(bs, third)


async def test_limit_above_one_counts_unfinished_runs(make_baseshift: Any, tmp_path: Path,
                                                      store: str) -> None:
    path = workflow(tmp_path, "runs 2 on conflict queue")
    async with make_baseshift(store=store, plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        ids = [await bs.runs.start_plan(plan, {"n": n}) for n in range(3)]
        await running(bs, ids[0])
        await running(bs, ids[1])
        assert limits_of(bs).queued() == [ids[2]]
        await finish(bs, ids[1])
        await running(bs, ids[2])
        for run_id in (ids[0], ids[2]):
            await finish(bs, run_id)


async def test_cancel_new_stores_the_new_run_cancelled(make_baseshift: Any, tmp_path: Path,
                                                       store: str) -> None:
    path = workflow(tmp_path, "runs 1 per input.customer on conflict cancel-new")
    async with make_baseshift(store=store, plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        events: list[RunStateChanged] = []
        async with bs.live.subscribe(None) as live:
            first = await bs.runs.start_plan(plan, {"customer": "acme"})
            refused = await bs.runs.start_plan(plan, {"customer": "acme"})
            while not any(e.run_id == refused for e in events):
                event = await asyncio.wait_for(live.__anext__(), DEADLINE)
                if isinstance(event, RunStateChanged):
                    events.append(event)
        run = await state_of(bs, refused)
        assert run.state is RunState.CANCELLED
        assert run.error is not None
        assert "another run with key 'acme' is unfinished" in run.error
        snapshot = await bs.store.load_run(refused)
        assert snapshot is not None
        assert {j.state.value for j in snapshot.jobs.values()} == {"CANCELLED"}
        assert [e.new for e in events if e.run_id == refused] == [RunState.CANCELLED]
        await running(bs, first)
        other = await bs.runs.start_plan(plan, {"customer": "globex"})
        await running(bs, other)
        for run_id in (first, other):
            assert (await finish(bs, run_id)).state is RunState.COMPLETED


async def test_cancel_running_cancels_the_oldest(make_baseshift: Any, tmp_path: Path,
                                                 store: str) -> None:
    path = workflow(tmp_path, "runs 1 per input.customer on conflict cancel-running")
    async with make_baseshift(store=store, plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        first = await bs.runs.start_plan(plan, {"customer": "acme"})
        await running(bs, first)
        second = await bs.runs.start_plan(plan, {"customer": "acme"})
        old = await until(bs, first, lambda r: r.state.finished)
        assert old.state is RunState.CANCELLED
        await running(bs, second)
        assert (await finish(bs, second)).state is RunState.COMPLETED


async def test_cancel_running_also_reaches_runs_not_executed_here(
        make_baseshift: Any, tmp_path: Path) -> None:
    """A run of the key that this process does not execute (queued earlier, or run by another
    process) is cancelled in the store."""
    path = workflow(tmp_path, "runs 1 on conflict cancel-running")
    async with make_baseshift(plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        elsewhere = await bs.engine.submit(plan, {}, start=False)
        fresh = await bs.runs.start_plan(plan, {})
        run = await state_of(bs, elsewhere)
        assert run.state is RunState.CANCELLED and "newer run" in (run.error or "")
        await running(bs, fresh)
        await finish(bs, fresh)


@pytest.mark.parametrize("inputs", [{"n": "many"}, {"nope": 1}])
async def test_bad_inputs_are_refused_before_anything_is_stored(
        make_baseshift: Any, tmp_path: Path, inputs: dict[str, Any]) -> None:
    path = workflow(tmp_path, "runs 1 per input.customer")
    async with make_baseshift(plugins=(GatePlugin(),)) as bs:
        with pytest.raises(InputError):
            await bs.runs.start_plan(bs.load_workflow(path), inputs)
        assert await bs.store.list_runs() == []


async def test_a_key_that_cannot_be_computed_is_an_input_error(make_baseshift: Any) -> None:
    from baseshift.dsl import compile_source

    async with make_baseshift(plugins=(GatePlugin(),)) as bs:
        source = ('workflow w {\n  version "1.0.0"\n  input { o: any = "text" }\n'
                  "  runs 1 per input.o.customer\n  job a uses gate { }\n}\n")
        plan = compile_source(source, "w.bsw", bs.check_env()).plan
        assert isinstance(plan, Plan)
        with pytest.raises(InputError, match="run key input.o.customer cannot be computed"):
            await bs.runs.start_plan(plan, {})
        assert await bs.store.list_runs() == []


async def test_queued_runs_survive_a_restart(make_baseshift: Any, tmp_path: Path) -> None:
    """The first process stops with one run RUNNING and two queued; the next one resumes the
    running one, keeps the queue in creation order and starts it as places free up."""
    path = workflow(tmp_path, "runs 1 per input.customer")
    settings = {"store": "sqlite", "data_dir": tmp_path / "data"}
    async with make_baseshift(plugins=(GatePlugin(),), **settings) as bs:
        plan = bs.load_workflow(path)
        first = await bs.runs.start_plan(plan, {"customer": "acme"})
        second = await bs.runs.start_plan(plan, {"customer": "acme"})
        third = await bs.runs.start_plan(plan, {"customer": "acme"})
        await running(bs, first)

    GateExecutor.started.clear()
    async with make_baseshift(plugins=(GatePlugin(),), **settings) as bs:
        assert await bs.runs.resume_interrupted() == [first]
        await bs.runs.take_up_waiting()
        assert limits_of(bs).queued() == [second, third]
        await running(bs, first)
        await finish(bs, first)
        await running(bs, second)
        await finish(bs, second)
        await running(bs, third)
        assert (await finish(bs, third)).state is RunState.COMPLETED


async def test_startup_starts_initialized_runs_of_unlimited_workflows(
        make_baseshift: Any, tmp_path: Path) -> None:
    """A run stored but not yet begun when its process stopped is started at startup."""
    path = workflow(tmp_path, "")
    settings = {"store": "sqlite", "data_dir": tmp_path / "data"}
    async with make_baseshift(plugins=(GatePlugin(),), **settings) as bs:
        waiting = await bs.engine.submit(bs.load_workflow(path), {}, start=False)
    async with make_baseshift(plugins=(GatePlugin(),), **settings) as bs:
        await bs.runs.take_up_waiting()
        await running(bs, waiting)
        assert (await finish(bs, waiting)).state is RunState.COMPLETED


async def test_a_finish_not_seen_here_is_noticed_at_the_next_start(make_baseshift: Any,
                                                                   tmp_path: Path) -> None:
    """The busy run is executed by another process (here: stored, never claimed) and ends
    there without an event here; the next start of the key starts the queued run first."""
    from baseshift.core.records import Changes

    path = workflow(tmp_path, "runs 1")
    async with make_baseshift(plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        elsewhere = await bs.engine.submit(plan, {}, start=False)
        queued = await bs.runs.start_plan(plan, {})
        assert limits_of(bs).queued() == [queued]
        record = await state_of(bs, elsewhere)
        record.state = RunState.COMPLETED
        await bs.store.apply(Changes(runs={record.id: record}))
        newest = await bs.runs.start_plan(plan, {})
        await running(bs, queued)
        assert limits_of(bs).queued() == [newest]
        await finish(bs, queued)
        await running(bs, newest)
        await finish(bs, newest)


async def test_retry_and_rerun_count_against_the_run_limit(make_baseshift: Any, tmp_path: Path,
                                                           store: str) -> None:
    """A run refused by cancel-new cannot be retried past the limit while its key is busy."""
    path = workflow(tmp_path, "runs 1 per input.customer on conflict cancel-new")
    async with make_baseshift(store=store, plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        first = await bs.runs.start_plan(plan, {"customer": "acme"})
        await running(bs, first)
        refused = await bs.runs.start_plan(plan, {"customer": "acme"})
        await until(bs, refused, lambda r: r.state is RunState.CANCELLED)
        with pytest.raises(Conflict, match="1 other run"):
            await bs.runs.retry(refused)
        assert (await state_of(bs, refused)).state is RunState.CANCELLED
        assert (await finish(bs, first)).state is RunState.COMPLETED
        await bs.runs.retry(refused)
        await running(bs, refused)
        with pytest.raises(Conflict, match="1 other run"):
            await bs.runs.rerun_from(first, "work")
        assert (await finish(bs, refused)).state is RunState.COMPLETED


DISABLED = {"disabled_plugins": ("run_limits",)}
"""Settings of an application without the `run_limits` plugin."""
UNAPPLIED = ("workflow 'keyed' declares a run limit (runs 1 per input.customer), but no "
             "plugin applies run limits")


async def test_without_the_plugin_a_run_limit_does_not_check(make_baseshift: Any,
                                                            tmp_path: Path) -> None:
    """`baseshift check` (and loading) reports the `runs` line; unlimited workflows run."""
    from baseshift.core.errors import DSLError

    path = workflow(tmp_path, "runs 1 per input.customer")
    async with make_baseshift(plugins=(GatePlugin(),), **DISABLED) as bs:
        [compiled] = bs.compile_paths([path])
        [problem] = compiled.diagnostics
        assert (problem.code, problem.message) == ("plan.run-limit-unapplied", UNAPPLIED)
        assert problem.span.line == 4 and "run_limits" in (problem.hint or "")
        assert compiled.plan is None
        with pytest.raises(DSLError):
            bs.load_workflow(path)
        plain = await bs.runs.start_plan(bs.load_workflow(workflow(tmp_path, "")), {})
        await running(bs, plain)
        assert (await finish(bs, plain)).state is RunState.COMPLETED


async def test_without_the_plugin_a_limited_run_is_refused(make_baseshift: Any) -> None:
    """A plan that escaped the check is refused at start, never run unlimited."""
    from baseshift.core.errors import ConfigError
    from baseshift.dsl import compile_source

    async with make_baseshift(plugins=(GatePlugin(),), **DISABLED) as bs:
        source = ('workflow keyed {\n  version "1.0.0"\n  input { customer: string }\n'
                  "  runs 1 per input.customer\n  job work uses gate { }\n}\n")
        plan = compile_source(source, "keyed.bsw", bs.check_env()).plan
        assert isinstance(plan, Plan)
        with pytest.raises(ConfigError, match=r"declares a run limit \(runs 1 per"):
            await bs.runs.start_plan(plan, {"customer": "acme"})
        assert await bs.store.list_runs() == []


async def test_without_the_plugin_queued_runs_stay_queued(make_baseshift: Any,
                                                         tmp_path: Path) -> None:
    """A server started without `run_limits` leaves the runs queued by a limit waiting."""
    path = workflow(tmp_path, "runs 1")
    settings = {"store": "sqlite", "data_dir": tmp_path / "data"}
    async with make_baseshift(plugins=(GatePlugin(),), **settings) as bs:
        queued = await bs.engine.submit(bs.load_workflow(path), {}, start=False)
    async with make_baseshift(plugins=(GatePlugin(),), **settings, **DISABLED) as bs:
        await bs.runs.take_up_waiting()
        assert (await state_of(bs, queued)).state is RunState.INITIALIZED
        assert queued not in bs.engine.runs


@pytest.mark.slow
def test_check_without_the_plugin_names_the_run_limit(run_cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "keyed.bsw"
    path.write_text('workflow keyed {\n  version "1.0.0"\n  input { customer: string }\n'
                    "  runs 1 per input.customer\n"
                    '  job work uses shell { with { command: "true" } }\n}\n')
    result = run_cli("check", str(path), env={"BASESHIFT_DISABLE_PLUGINS": "run_limits"})
    assert result.exit_code != 0
    assert f"error[plan.run-limit-unapplied]: {UNAPPLIED}" in result.stdout + result.stderr


async def test_the_commands_resume_a_queued_run_only_behind_its_limit(make_baseshift: Any,
                                                                      tmp_path: Path) -> None:
    """`baseshift resume RUN` and `run`'s report go through the run service: a run queued
    behind its limit is neither started beside the running one nor waited for."""
    from baseshift.plugins.commands.common import wait_all
    from baseshift.plugins.commands.runs import _resume_one

    path = workflow(tmp_path, "runs 1 on conflict queue")
    async with make_baseshift(plugins=(GatePlugin(),)) as bs:
        plan = bs.load_workflow(path)
        first = await bs.runs.start_plan(plan, {})
        second = await bs.runs.start_plan(plan, {})
        await running(bs, first)
        await _resume_one(bs, second)
        assert second not in bs.engine.runs
        assert limits_of(bs).queued() == [second]
        [reported] = await asyncio.wait_for(wait_all(bs, [second]), DEADLINE)
        assert reported.run.state is RunState.INITIALIZED
        await finish(bs, first)
        await running(bs, second)
        assert (await finish(bs, second)).state is RunState.COMPLETED
