"""The `shell` executor: real subprocesses, output parsing, exit codes and process groups."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseshift.core.compiled import CheckEnv
from baseshift.core.errors import ExecutionError, ExpressionError
from baseshift.core.expr import Interp, Name, ObjectExpr, evaluate
from baseshift.core.json_text import output_json
from baseshift.core.protocols import Executor, JobContext, JobResult
from baseshift.dsl import compile_source
from baseshift.plugins.executors import shell as executor_shell
from baseshift.plugins.executors.shell import CAPTURE_LIMIT, ShellExecutor

LIMIT = 20  # seconds; only to keep a broken test from hanging the suite


def ctx(workdir: str | None = None, **config: Any) -> JobContext:
    return JobContext(run_id="r", job="j", attempt=1, config=config, workdir=workdir)


async def run(**config: Any) -> JobResult:
    return await asyncio.wait_for(ShellExecutor().execute(ctx(**config)), LIMIT)


async def fails(**config: Any) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        await run(**config)
    return info.value


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process. A zombie is not: killed orphans are re-parented to
    PID 1, which may be slow (or, in some containers, never) to reap them."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Every process (zombies included) whose process group is `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except ProcessLookupError:
                pass
    return members


async def all_gone(*pids: int) -> bool:
    """Whether every pid stops running. Polled: a killed process closes its pipes (which is
    what the executor waits for) an instant before the kernel marks it exited."""
    async def poll() -> bool:
        while any(is_running(pid) for pid in pids):
            await asyncio.sleep(0.01)
        return True

    return await asyncio.wait_for(poll(), LIMIT)


async def read_pids(path: Path) -> list[int]:
    """Wait until the command under test has written its pids to `path`."""
    async def poll() -> list[int]:
        while not (path.exists() and path.read_text().endswith("\n")):
            await asyncio.sleep(0.01)
        return [int(p) for p in path.read_text().split()]

    return await asyncio.wait_for(poll(), LIMIT)


# ------------------------------------------------------------------ contract


def test_is_an_executor_registered_by_the_hook() -> None:
    assert executor_shell.register_executors() == [ShellExecutor]
    assert isinstance(ShellExecutor(), Executor)
    assert ShellExecutor.name == "shell"


def test_config_schema_is_valid_and_precise() -> None:
    schema = ShellExecutor.config_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = [{"command": "ls"}, {"argv": ["ls", "-l"], "env": {"A": "1"}, "cwd": "x",
                                "expect_exit": [0, 1], "stdin": "hi"},
            {"command": "true", "expect_exit": 2}]
    bad = [{}, {"command": "ls", "argv": ["ls"]}, {"command": ""}, {"argv": []},
           {"argv": ["ls", 1]}, {"command": "ls", "env": {"A": 1}},
           {"command": "ls", "expect_exit": "0"}, {"command": "ls", "expect_exit": []},
           {"command": "ls", "shell": True}]
    assert all(validator.is_valid(c) for c in good)
    for config in bad:
        assert not validator.is_valid(config), config


# ------------------------------------------------------------------ running


async def test_command_runs_through_sh_and_captures_both_streams() -> None:
    result = await run(command="echo out; echo err >&2")
    assert result.output == {"stdout": "out\n", "stderr": "err\n", "exit_code": 0}
    assert result.log == "out\nerr"


async def test_argv_runs_without_a_shell() -> None:
    result = await run(argv=["printf", "%s|%s", "$HOME; echo no", "*"])
    assert result.output["stdout"] == "$HOME; echo no|*"


async def test_env_is_merged_over_the_server_environment() -> None:
    result = await run(command='printf "%s %s %s" "$GREETING" "$BASESHIFT_JOB" "${PATH:+set}"',
                       env={"GREETING": "hi there"})
    assert result.output["stdout"] == "hi there j set"


async def test_cwd(tmp_path: Path) -> None:
    assert (await run(command="pwd", cwd=str(tmp_path))).output["stdout"] == f"{tmp_path}\n"


async def test_relative_cwd_is_inside_the_workdir_which_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    executor = ShellExecutor()
    inside = await executor.execute(ctx(workdir=str(tmp_path), command="pwd", cwd="sub"))
    default = await executor.execute(ctx(workdir=str(tmp_path), command="pwd"))
    assert inside.output["stdout"] == f"{tmp_path / 'sub'}\n"
    assert default.output["stdout"] == f"{tmp_path}\n"


async def test_stdin_is_fed_and_closed() -> None:
    result = await run(argv=["cat"], stdin="line one\nline two")
    assert result.output["stdout"] == "line one\nline two"


async def test_stdin_defaults_to_empty() -> None:
    assert (await run(argv=["cat"])).output == {"stdout": "", "stderr": "", "exit_code": 0}


async def test_large_stdin_to_a_command_that_ignores_it() -> None:
    result = await run(command="echo ignored", stdin="x" * (4 * 1024 * 1024))
    assert result.output["stdout"] == "ignored\n"


# ------------------------------------------------------------------ output parsing


@pytest.mark.parametrize(("command", "expected"), [
    ("echo '{\"a\": [1, 2]}'", {"a": [1, 2]}),
    ("echo 42", 42),
    ("printf '  \"text\"  \\n\\n'", "text"),
    ("printf '{\\n  \"pretty\": true\\n}\\n'", {"pretty": True}),
    ("echo building; echo done; echo '{\"ok\": true}'", {"ok": True}),
    ("echo '[1]'; echo ''; echo '  '", [1]),
])
async def test_json_output(command: str, expected: Any) -> None:
    assert (await run(command=command)).output == expected


@pytest.mark.parametrize("command", [
    "echo building; echo 42",     # a bare number on the last line is log text
    "echo '{\"a\": 1}'; echo done",
    "echo NaN",
    "echo '{broken'",
])
async def test_non_json_output_is_the_text_record(command: str) -> None:
    output = (await run(command=command)).output
    assert set(output) == {"stdout", "stderr", "exit_code"}


async def test_stderr_does_not_spoil_json_stdout_and_is_logged() -> None:
    result = await run(command="echo warning >&2; echo '{\"a\": 1}'")
    assert result.output == {"a": 1}
    assert "warning" in result.log.splitlines()


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(codec="utf-8"))
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
), st.lists(st.from_regex(r"[a-z][a-z 0-9]*", fullmatch=True), max_size=3))
def test_parse_json_finds_the_value_after_log_lines(value: Any, log: list[str]) -> None:
    text = json.dumps(value)
    assert output_json(text + "\n") == value
    if isinstance(value, dict | list):
        assert output_json("\n".join([*log, text, ""])) == value


async def test_output_is_capped_and_truncation_noted() -> None:
    size = CAPTURE_LIMIT + 1000
    result = await run(command=f"head -c {size} /dev/zero | tr '\\0' 'a'; echo err >&2")
    stdout = result.output["stdout"]
    assert stdout.startswith("a" * CAPTURE_LIMIT)
    assert stdout.endswith(f"[baseshift: output truncated at {CAPTURE_LIMIT} bytes, 1000 dropped]")
    assert result.output["stderr"] == "err\n"
    assert result.log.endswith("output truncated at 1048576 bytes, 1000 dropped]")


async def test_log_lines_drop_carriage_returns() -> None:
    result = await run(command="printf 'one\\r\\ntwo\\r\\n'")
    assert result.log == "one\ntwo"
    assert result.output["stdout"] == "one\r\ntwo\r\n"


async def test_invalid_utf8_is_replaced() -> None:
    assert (await run(command="printf 'caf\\351'")).output["stdout"] == "caf\ufffd"


# ------------------------------------------------------------------ exit codes and errors


async def test_unexpected_exit_code_fails_with_the_stderr_tail() -> None:
    error = await fails(
        command="echo noise; for i in $(seq 1 15); do echo line$i >&2; done; exit 3")
    assert error.message.startswith("command exited with 3: line6\n")
    assert error.message.endswith("line15")


async def test_exit_code_failure_falls_back_to_stdout() -> None:
    error = await fails(command="echo only stdout; exit 1")
    assert error.message == "command exited with 1: only stdout"


async def test_failing_attempt_keeps_its_log() -> None:
    context = ctx(command="echo progress; exit 2")
    with pytest.raises(ExecutionError):
        await ShellExecutor().execute(context)
    assert context.lines == ["progress"]


@pytest.mark.parametrize("expect_exit", [3, [0, 3]])
async def test_expected_exit_codes(expect_exit: int | list[int]) -> None:
    result = await run(command="exit 3", expect_exit=expect_exit)
    assert result.output == {"stdout": "", "stderr": "", "exit_code": 3}


async def test_zero_is_a_failure_when_not_expected() -> None:
    error = await fails(command="true", expect_exit=1)
    assert error.message == "command exited with 0"


async def test_killed_by_a_signal() -> None:
    error = await fails(command="kill -9 $$")
    assert error.message == "command was killed by signal 9 (SIGKILL)"


async def test_program_not_found() -> None:
    error = await fails(argv=["no-such-program-xyz"])
    assert error.message.startswith("cannot start 'no-such-program-xyz'")


async def test_missing_cwd(tmp_path: Path) -> None:
    error = await fails(command="true", cwd=str(tmp_path / "missing"))
    assert "cannot start '/bin/sh'" in error.message and "missing" in error.message


@pytest.mark.parametrize(("config", "message"), [
    ({}, "exactly one of 'command' and 'argv'"),
    ({"command": "ls", "argv": ["ls"]}, "exactly one of 'command' and 'argv'"),
    ({"command": 3}, "'command' must be a non-empty string"),
    ({"argv": "ls -l"}, "'argv' must be a non-empty list of strings"),
    ({"command": "ls", "env": {"A": 1}}, "'env' must be an object of strings"),
    ({"command": "ls", "expect_exit": "0"}, "'expect_exit' must be an integer or a list"),
])
async def test_bad_config(config: dict[str, Any], message: str) -> None:
    assert message in (await fails(**config)).message


# ------------------------------------------------------------------ process groups


async def test_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    task = asyncio.create_task(ShellExecutor().execute(
        ctx(command=f"sleep 30 & echo $$ $! > {pidfile}; wait")))
    shell_pid, sleep_pid = await read_pids(pidfile)
    assert is_running(sleep_pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    assert await all_gone(shell_pid, sleep_pid)
    assert await all_gone(*group_members(shell_pid))


def marked(marker: str) -> list[int]:
    """Every process whose environment holds MARKER=`marker`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
        if f"MARKER={marker}".encode() in environ.split(b"\0"):
            found.append(int(entry))
    return found


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 5, 8])
async def test_cancel_at_any_point_of_the_start_stops_everything(steps: int) -> None:
    marker = f"start-{steps}-{os.getpid()}"
    task = asyncio.create_task(ShellExecutor().execute(
        ctx(command="sleep 30 & sleep 30", env={"MARKER": marker})))
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    assert await all_gone(*marked(marker))


async def test_timeout_kills_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    executor = ShellExecutor()

    async def attempt() -> None:
        await executor.execute(ctx(command=f"echo $$ > {pidfile}; exec sleep 30"))

    task = asyncio.create_task(asyncio.wait_for(attempt(), 0.5))
    (pid,) = await read_pids(pidfile)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, LIMIT)
    assert await all_gone(pid)


async def test_processes_ignoring_sigterm_get_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    executor = ShellExecutor()
    executor.grace = 0.2
    task = asyncio.create_task(executor.execute(
        ctx(command=f"trap '' TERM; sleep 30 & echo $$ $! > {pidfile}; wait")))
    pids = await read_pids(pidfile)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    assert await all_gone(*pids)


async def test_background_processes_left_behind_are_ended(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    result = await run(command=f"sleep 30 & echo $! > {pidfile}; echo '{{\"done\": true}}'")
    assert result.output == {"done": True}
    (pid,) = await read_pids(pidfile)
    assert await all_gone(pid)


async def test_command_runs_in_its_own_session() -> None:
    script = "import os; print(str(os.getsid(0) == os.getpid()).lower())"
    result = await run(argv=[sys.executable, "-c", script])
    assert result.output is True


async def test_a_second_cancel_while_stopping_still_sees_the_command_reaped(
        tmp_path: Path) -> None:
    """Cancelled, then cancelled again during the grace period (an engine stopping while a
    cancel is under way): the step ends only once its process is gone and reaped."""
    pidfile = tmp_path / "pids"
    executor = ShellExecutor()
    task = asyncio.create_task(executor.execute(
        ctx(command=f"trap '' TERM; echo $$ > {pidfile}; while :; do sleep 0.05; done")))
    (pid,) = await read_pids(pidfile)
    task.cancel()
    await asyncio.sleep(0.05)  # the SIGTERM is ignored: the step waits out its grace period
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    assert not Path(f"/proc/{pid}").exists(), "the leader was left unreaped"


# ------------------------------------------------------- values reach the shell as one word


def _commands(*commands: str) -> list[ObjectExpr]:
    """Compile one shell job per command (so `command` is marked as a script) and give each
    job's `with` block unevaluated."""
    jobs = "\n".join(f"  job j{i} uses shell {{ with {{ command: {json.dumps(c)} }} }}"
                     for i, c in enumerate(commands))
    source = f'workflow q {{\n  version "1.0.0"\n  input {{ v: string }}\n{jobs}\n}}\n'
    compiled = compile_source(source, "q.bsw", CheckEnv({"shell": ShellExecutor.config_schema}))
    assert compiled.ok and compiled.plan is not None, compiled.diagnostics
    return [job.config for job in compiled.plan.jobs]


QUOTED = _commands(
    "printf '%s' ${input.v}",                                # outside quotes
    "printf '%s' 'a${input.v}b'",                            # inside single quotes
    "printf '%s' \"a${input.v}b\"",                          # inside double quotes
    "v=${input.v}; printf '%s' \"$(printf '%s' \"$v\"; echo .)\"",  # through a variable
    "printf '%s' ok # ${input.v}",                           # in a comment
)
EXPECTED = [lambda v: v, lambda v: f"a{v}b", lambda v: f"a{v}b", lambda v: v + ".",
            lambda v: "ok"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def _sh(command: str, cwd: Path | None = None) -> bytes:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, check=True,
                          timeout=LIMIT, cwd=cwd).stdout


@given(TEXT)
def test_any_text_reaches_the_command_exactly_wherever_it_stands(value: str) -> None:
    for config, expected in zip(QUOTED, EXPECTED, strict=True):
        command = evaluate(config, {"input": {"v": value}})["command"]
        assert _sh(command) == expected(value).encode(), command


@pytest.mark.parametrize("value", [
    "O'Brien", "x'; id > stolen.txt; echo '", "$(touch pwned)", "`touch pwned`",
    "; touch pwned", "a\nb", "*", "-n", "", "\\", '"', "${HOME}", "it's \"quoted\" (yes)"])
def test_injections_are_plain_text(value: str, tmp_path: Path) -> None:
    for config, expected in zip(QUOTED, EXPECTED, strict=True):
        command = evaluate(config, {"input": {"v": value}})["command"]
        assert _sh(command, tmp_path) == expected(value).encode()
    assert list(tmp_path.iterdir()) == []  # nothing was touched, `id` never ran


def test_a_nul_character_fails_naming_the_setting() -> None:
    with pytest.raises(ExpressionError, match="setting 'command'.*NUL"):
        evaluate(QUOTED[0], {"input": {"v": "a\x00b"}})


def test_a_value_inside_a_command_substitution_is_refused_naming_the_setting() -> None:
    """The checker refuses it (dsl.shell-quote); evaluation refuses it too."""
    script = Interp(('echo "$(printf %s ', Name("v"), ')"'), shell="command")
    with pytest.raises(ExpressionError, match=r"setting 'command': \$\{v\} stands inside"):
        evaluate(script, {"v": "x"})


def test_raw_splices_shell_text_and_a_lone_value_is_one_word() -> None:
    raw, lone = _commands("printf '%s|' ${raw(input.v)}", "${input.v}")
    assert _sh(evaluate(raw, {"input": {"v": "a b"}})["command"]) == b"a|b|"
    assert evaluate(lone, {"input": {"v": "echo hi"}})["command"] == "'echo hi'"
