"""The `python` executor: resolving "module:callable", calling it, and its failures."""
from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseshift.core.errors import ExecutionError
from baseshift.core.protocols import Executor, JobContext, JobResult
from baseshift.plugins.executors import python as executor_python
from baseshift.plugins.executors.python import PythonExecutor

# The tests dir is not a package: make the sample module importable by name in any mode.
HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import executor_samples  # noqa: E402

S = "executor_samples"


def ctx(**config: Any) -> JobContext:
    return JobContext(run_id="r", job="j", attempt=1, config=config)


async def run(**config: Any) -> JobResult:
    return await PythonExecutor().execute(ctx(**config))


async def fails(**config: Any) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        await run(**config)
    return info.value


# ------------------------------------------------------------------ contract


def test_is_an_executor_registered_by_the_hook() -> None:
    assert executor_python.register_executors() == [PythonExecutor]
    assert isinstance(PythonExecutor(), Executor)
    assert PythonExecutor.name == "python"


def test_config_schema_is_valid_and_precise() -> None:
    schema = PythonExecutor.config_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"function": "a.b:c", "args": [1], "x": 1})
    assert validator.is_valid({"function": "pkg.mod:Class.method"})
    for bad in ({}, {"function": "nocolon"}, {"function": "a:b:c"}, {"function": 3},
                {"function": "a:b", "args": "x"}, {"function": "1a:b"}):
        assert not validator.is_valid(bad), bad


# ------------------------------------------------------------------ calling


async def test_sync_function_with_positional_and_keyword_arguments() -> None:
    result = await run(function=f"{S}:add", args=[2, 3], scale=10)
    assert result == JobResult(output=50, log="")


async def test_keyword_arguments_are_every_other_key() -> None:
    result = await run(function=f"{S}:echo_kwargs", a=1, b={"c": [True, None]})
    assert result.output == {"a": 1, "b": {"c": [True, None]}}


async def test_positional_arguments_only() -> None:
    assert (await run(function=f"{S}:echo_args", args=["x", 2])).output == ["x", 2]


async def test_no_arguments() -> None:
    assert (await run(function=f"{S}:noop")).output is None


async def test_async_function_is_awaited() -> None:
    result = await run(function=f"{S}:async_greet", name="ada")
    assert result.output == {"greeting": "hello ada!"}


async def test_async_callable_object_is_awaited() -> None:
    assert (await run(function=f"{S}:async_callable", value=21)).output == 42


async def test_sync_function_runs_in_a_worker_thread() -> None:
    name = (await run(function=f"{S}:thread_name")).output
    assert name != threading.current_thread().name


async def test_sync_function_returning_a_coroutine_is_awaited() -> None:
    result = await run(function=f"{S}:returns_coroutine")
    assert result.output == {"greeting": "hello coroutine!"}


async def test_dotted_attribute_path() -> None:
    assert (await run(function=f"{S}:Greeter.hello", name="bo")).output == "hello bo"


async def test_results_are_normalised_to_plain_json() -> None:
    assert (await run(function=f"{S}:returns_tuple")).output == [1, ["a", "b"]]
    assert (await run(function=f"{S}:returns_int_keys")).output == {"1": "one"}
    assert (await run(function=f"{S}:returns_float")).output == 1.5


async def test_resolved_callables_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = executor_python._load

    def counting_load(spec: str) -> Any:
        loads.append(spec)
        return real_load(spec)

    monkeypatch.setattr(executor_python, "_load", counting_load)
    executor = PythonExecutor()
    outputs = [(await executor.execute(ctx(function=f"{S}:count"))).output for _ in range(3)]
    assert outputs == sorted(outputs) and len(set(outputs)) == 3
    assert loads == [f"{S}:count"]


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
))
def test_any_json_value_passes_through_unchanged(value: Any) -> None:
    result = asyncio.run(run(function=f"{S}:echo_args", args=[value]))
    assert result.output == [value]


# ------------------------------------------------------------------ failures


async def test_function_raising_fails_with_type_message_and_logged_traceback() -> None:
    context = ctx(function=f"{S}:boom")
    with pytest.raises(ExecutionError, match=r"'executor_samples:boom' raised ValueError: boom"):
        await PythonExecutor().execute(context)
    log = "\n".join(context.lines)
    assert log.startswith("Traceback (most recent call last):")
    assert 'raise ValueError("boom")' in log


async def test_async_function_raising() -> None:
    error = await fails(function=f"{S}:async_boom")
    assert "raised KeyError: 'missing'" in error.message


async def test_sys_exit_fails_the_attempt_not_the_server() -> None:
    error = await fails(function=f"{S}:exits")
    assert "raised SystemExit: 3" in error.message


async def test_execution_error_from_the_function_is_kept_as_is() -> None:
    error = await fails(function=f"{S}:fails_cleanly")
    assert error.message == "nothing to do today"


async def test_wrong_arguments_are_reported_as_the_call_failing() -> None:
    error = await fails(function=f"{S}:add", a=1)
    assert "raised TypeError" in error.message


@pytest.mark.parametrize("function", [f"{S}:returns_set", f"{S}:returns_nan"])
async def test_non_json_result_fails_clearly(function: str) -> None:
    error = await fails(function=function)
    assert "returned a value that is not JSON-serialisable" in error.message


async def test_module_not_importable() -> None:
    error = await fails(function="no_such_module_xyz:run")
    assert "cannot import module 'no_such_module_xyz'" in error.message
    assert error.hint is not None


async def test_missing_attribute_names_it_and_suggests_callables() -> None:
    error = await fails(function=f"{S}:nope")
    assert "module 'executor_samples' has no attribute 'nope'" in error.message
    assert error.hint is not None and "add" in error.hint


async def test_missing_nested_attribute() -> None:
    error = await fails(function=f"{S}:Greeter.bye")
    assert "has no attribute 'bye'" in error.message


async def test_not_callable() -> None:
    error = await fails(function=f"{S}:not_callable")
    assert "is a int, not a callable" in error.message


@pytest.mark.parametrize("function", ["nocolon", "a:b:c", ":f", "m:", "a b:c", "a:b\n", 7, None])
async def test_bad_function_format(function: object) -> None:
    error = await fails(function=function)
    assert "'function' must be a string \"module.path:callable\"" in error.message


async def test_args_must_be_a_list() -> None:
    error = await fails(function=f"{S}:echo_args", args="abc")
    assert error.message == "'args' must be a list, got str"


# ------------------------------------------------------------------ cancellation


async def test_cancelling_an_async_function_cancels_it() -> None:
    executor_samples.Sleeper.cleaned = False
    task = asyncio.create_task(run(function=f"{S}:Sleeper.sleep"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert executor_samples.Sleeper.cleaned


async def test_cancel_abandons_a_blocked_sync_function() -> None:
    executor_samples.started.clear()
    executor_samples.release.clear()
    try:
        task = asyncio.create_task(run(function=f"{S}:blocks"))
        assert await asyncio.to_thread(executor_samples.started.wait, 10)
        task.cancel()
        # The attempt ends while the thread is still blocked inside the function.
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert not executor_samples.release.is_set()
    finally:
        executor_samples.release.set()


# ------------------------------------------------------------------ printed output


async def test_printed_text_goes_to_the_attempt_log_not_stdout(
        capfd: pytest.CaptureFixture[str]) -> None:
    result = await run(function=f"{S}:chatty", tag="a")
    assert result.output == "a"
    assert result.log.splitlines() == ["a out 1", "a err", "a tail"]
    out, err = capfd.readouterr()
    assert "a out" not in out + err and "a tail" not in out + err


async def test_concurrent_steps_each_keep_their_own_lines(
        capfd: pytest.CaptureFixture[str]) -> None:
    executor = PythonExecutor()
    tags = [f"t{i}" for i in range(8)]
    results = await asyncio.gather(
        *(executor.execute(ctx(function=f"{S}:chatty", tag=t)) for t in tags),
        *(executor.execute(ctx(function=f"{S}:async_chatty", tag=t)) for t in tags))
    for tag, result in zip(tags, results[:8], strict=True):
        assert result.log.splitlines() == [f"{tag} out 1", f"{tag} err", f"{tag} tail"]
    for tag, result in zip(tags, results[8:], strict=True):
        assert result.log.splitlines() == [f"{tag} async out", f"{tag} async after"]
    out, err = capfd.readouterr()
    assert " out" not in out + err


async def test_printing_outside_a_step_still_reaches_the_real_stream(
        capfd: pytest.CaptureFixture[str]) -> None:
    await run(function=f"{S}:chatty", tag="a")
    print("after the step")
    assert "after the step" in capfd.readouterr().out
