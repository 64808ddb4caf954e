"""The command line as users run it: help, exit codes, output, and the run lifecycle."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.cli import build_parser

COMMANDS = ["check", "plan", "run", "runs", "show", "resume", "cancel", "retry", "plugins"]

FLAKY = """
workflow gate {
  version "1.0.0"
  input { flag: string }
  job first uses shell { with { command: "echo first" } }
  job gate uses shell { needs first  with { command: "test -f ${input.flag}" } }
  job after uses shell { needs gate  with { command: "echo after" } }
}
"""

SLOW = """
workflow slow {
  version "1.0.0"
  job wait uses shell { with { command: "sleep 30" } }
  job next uses shell { needs wait  with { command: "echo next" } }
}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_command_has_help() -> None:
    parser = build_parser()
    for command in COMMANDS:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([command, "--help"])
        assert info.value.code == 0


@pytest.mark.slow
def test_help_and_usage_errors_exit_codes(run_cli: Any) -> None:
    assert run_cli("--help").exit_code == 0
    bad = run_cli("frobnicate")
    assert bad.exit_code == 2 and "invalid choice" in bad.stderr
    assert run_cli("run").exit_code == 2


@pytest.mark.slow
def test_check_reports_errors_with_location_and_exits_1(run_cli: Any, tmp_path: Path) -> None:
    flow = write(tmp_path, "bad.bsw", 'workflow w {\n  version "1.0.0"\n'
                 '  job a uses shell { with { command: "x" } }\n'
                 '  job b uses shell { needs aa  with { command: "y" } }\n}\n')
    result = run_cli("check", str(flow))
    assert result.exit_code == 1
    assert f"{flow}:4:28: error[dsl.unknown-job]" in result.stderr
    assert "    4 |   job b uses shell { needs aa  with { command: \"y\" } }" in result.stderr
    assert "hint: did you mean 'a'?" in result.stderr
    assert "check failed: 1 of 1 files have errors" in result.stderr


@pytest.mark.slow
def test_check_json(run_cli: Any) -> None:
    result = run_cli("check", "workflows/hello.bsw", "--json")
    assert result.exit_code == 0
    [entry] = json.loads(result.stdout)
    assert entry["ok"] and entry["workflow"] == "hello" and entry["diagnostics"] == []


@pytest.mark.slow
@pytest.mark.parametrize("args", [("check", "nope/missing.bsw"), ("run", "missing.bsw"),
                                  ("plan", "missing.bsw"),
                                  ("run", "workflows/hello.bsw", "--input-file", "no.json")])
def test_a_missing_file_is_a_usage_error(run_cli: Any, args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2, result.stderr
    assert "no such file or folder: " in result.stderr and "usage: baseshift" in result.stderr


@pytest.mark.slow
def test_a_folder_where_a_file_is_needed_is_a_usage_error(run_cli: Any) -> None:
    result = run_cli("run", "workflows")
    assert result.exit_code == 2 and "workflows is a folder; give a file" in result.stderr


@pytest.mark.slow
def test_disabling_an_unknown_plugin_is_refused(run_cli: Any) -> None:
    result = run_cli("check", "workflows/hello.bsw", env={"BASESHIFT_DISABLE_PLUGINS": "web_uii"})
    assert result.exit_code == 2
    assert "cannot disable plugin 'web_uii': no plugin has that name" in result.stderr
    assert "did you mean 'web_ui'?" in result.stderr
    known = run_cli("check", "workflows/hello.bsw", env={"BASESHIFT_DISABLE_PLUGINS": "web_ui"})
    assert known.exit_code == 0, known.stderr


@pytest.mark.slow
def test_a_misspelt_setting_variable_is_named_in_a_warning(run_cli: Any) -> None:
    result = run_cli("check", "workflows/hello.bsw", env={"BASESHIFT_STROE": "memory",
                                                           "BASESHIFT_SECRET_X": "s"})
    assert result.exit_code == 0
    assert result.stderr.count("warning: environment variable BASESHIFT_STROE is not a "
                               "setting and is ignored; did you mean BASESHIFT_STORE?") == 1
    assert "SECRET" not in result.stderr


@pytest.mark.slow
def test_run_json_stays_json_when_a_step_prints(run_cli: Any, tmp_path: Path) -> None:
    write(tmp_path, "noisy_step.py", "import os, sys\n\ndef go():\n"
          "    print('hello from the step')\n    print('to stderr', file=sys.stderr)\n"
          "    os.system('echo from a subprocess')\n    os.write(1, b'raw bytes\\n')\n"
          "    return 7\n")
    flow = write(tmp_path, "noisy.bsw", 'workflow noisy {\n  version "1.0.0"\n'
                 '  job go uses python { with { function: "noisy_step:go" } }\n}\n')
    result = run_cli("run", str(flow), "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)  # what reached file descriptor 1 went to stderr
    assert "hello from the step" not in result.stderr
    assert "from a subprocess" in result.stderr and "raw bytes" in result.stderr
    shown = run_cli("show", run["id"], "--logs", "--json", cwd=tmp_path)
    assert "hello from the step" in shown.stdout and "to stderr" in shown.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "expected"), [
    ("text", "greet"), ("dot", "digraph"), ("mermaid", "flowchart"), ("json", '"workflow"')])
def test_plan_formats(run_cli: Any, fmt: str, expected: str) -> None:
    result = run_cli("plan", "workflows/hello.bsw", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert expected in result.stdout


@pytest.mark.slow
def test_run_rejects_bad_inputs_with_usage_exit_code(run_cli: Any) -> None:
    result = run_cli("run", "workflows/fanout.bsw", "--input", "numbers=notjson")
    assert result.exit_code == 2
    assert "input 'numbers' must be a list<number> written as JSON" in result.stderr
    typo = run_cli("run", "workflows/hello.bsw", "--input", "nmae=x")
    assert typo.exit_code == 2 and "did you mean 'name'?" in typo.stderr


@pytest.mark.slow
def test_run_input_file(run_cli: Any, tmp_path: Path) -> None:
    inputs = write(tmp_path, "in.json", json.dumps({"numbers": [2, 2]}))
    result = run_cli("run", "workflows/fanout.bsw", "--input-file", str(inputs), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["outputs"]["sum"] == 8


@pytest.mark.slow
def test_run_prints_progress_lines_when_not_a_terminal(run_cli: Any) -> None:
    result = run_cli("run", "workflows/hello.bsw")
    assert result.exit_code == 0
    assert "greet SUCCEEDED (attempt 1)" in result.stderr
    assert "COMPLETED" in result.stdout


@pytest.mark.slow
def test_runs_show_and_retry_from_failed(run_cli: Any, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flow = write(tmp_path, "gate.bsw", FLAKY)
    failed = run_cli("run", str(flow), "--input", f"flag={flag}", "--json")
    assert failed.exit_code == 1
    run = json.loads(failed.stdout)
    assert run["status"] == "FAILED" and "command exited with 1" in run["error"]

    listed = run_cli("runs", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run["id"]]
    assert run["id"] in run_cli("runs", "--state", "FAILED").stdout
    shown = run_cli("show", run["id"], "--logs")
    assert "gate" in shown.stdout and "FAILED" in shown.stdout

    flag.write_text("")
    retried = run_cli("retry", run["id"], "--json")
    assert retried.exit_code == 0, retried.stderr
    again = json.loads(retried.stdout)
    assert again["status"] == "COMPLETED"
    attempts = {j["key"]: [a["state"] for a in j["attempts"]] for j in again["jobs"]}
    assert attempts == {"first": ["SUCCEEDED"], "gate": ["FAILED", "SUCCEEDED"],
                        "after": ["SUCCEEDED"]}


@pytest.mark.slow
def test_retry_refuses_a_completed_run(run_cli: Any) -> None:
    done = json.loads(run_cli("run", "workflows/hello.bsw", "--json").stdout)
    result = run_cli("retry", done["id"])
    assert result.exit_code == 1
    assert "only a failed or cancelled run can be retried" in result.stderr


@pytest.mark.slow
def test_show_unknown_run(run_cli: Any) -> None:
    result = run_cli("show", "nope")
    assert result.exit_code == 1
    assert "run 'nope' not found" in result.stderr and "hint:" in result.stderr


@pytest.mark.slow
def test_cancel_from_another_process_stops_the_run(run_cli: Any, tmp_path: Path) -> None:
    flow = write(tmp_path, "slow.bsw", SLOW)
    env = {"BASESHIFT_DATA_DIR": str(tmp_path / "cli-data")}
    proc = subprocess.Popen([sys.executable, "-m", "baseshift", "run", str(flow), "--json"],
                            env={**__import__("os").environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        run_id = _wait_for_run(run_cli)
        cancelled = run_cli("cancel", run_id)
        assert cancelled.exit_code == 0, cancelled.stderr
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    run = json.loads(out)
    assert run["status"] == "CANCELLED"
    assert {j["key"]: j["state"] for j in run["jobs"]} == {"wait": "CANCELLED",
                                                          "next": "CANCELLED"}


def _wait_for_run(run_cli: Any) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = json.loads(run_cli("runs", "--json").stdout or "[]")
        if runs and runs[0]["status"] == "RUNNING":
            return str(runs[0]["id"])
        time.sleep(0.1)
    raise AssertionError("the run never started")


@pytest.mark.slow
def test_resume_with_nothing_to_do(run_cli: Any) -> None:
    result = run_cli("resume")
    assert result.exit_code == 0 and "nothing to resume" in result.stdout


@pytest.mark.slow
def test_plugins_lists_builtins_and_their_hooks(run_cli: Any) -> None:
    result = run_cli("plugins")
    assert result.exit_code == 0
    assert "executor_shell  (builtin)\n    hooks: register_executors" in result.stdout
    assert "executors: grpc, http, kubernetes, manual, python, shell" in result.stdout


@pytest.mark.slow
def test_python_dash_m_and_console_script_agree() -> None:
    script = subprocess.run(["baseshift", "--version"], capture_output=True, text=True)
    module = subprocess.run([sys.executable, "-m", "baseshift", "--version"],
                            capture_output=True, text=True)
    assert script.stdout == module.stdout and script.stdout.startswith("baseshift ")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(2, 130), (15, 143)])
def test_ctrl_c_or_sigterm_stop_attempts_and_leave_the_run_resumable(
        run_cli: Any, tmp_path: Path, signum: int, code: int) -> None:
    import os
    import signal

    marker = tmp_path / "child.pid"
    flow = write(tmp_path, "slow.bsw", f"""
workflow slowpoke {{
  version "1.0.0"
  job a uses shell {{ with {{ command: "echo $$ > {marker}; sleep 30" }} }}
}}
""")
    env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "cli-data")}
    proc = subprocess.Popen([sys.executable, "-m", "baseshift", "run", str(flow)], env=env,
                            text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.Signals(signum))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert "unfinished runs can be continued with `baseshift resume`" in err
    child = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    runs = json.loads(run_cli("runs", "--json").stdout)
    assert runs[0]["status"] == "RUNNING"
