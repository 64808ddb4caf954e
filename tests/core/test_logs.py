"""The log lines themselves (core/app/logs.py, logrender.py): which format, and what a JSON
or console line holds."""
from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from baseshift.core.app.logrender import make_formatter
from baseshift.core.app.logs import configure_logging, log_format
from baseshift.core.audit import Acting, acting_as
from baseshift.core.errors import ConfigError
from baseshift.core.logcontext import log_bound, log_fields


class FakeStream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_console_on_a_terminal_json_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASESHIFT_LOG_FORMAT", raising=False)
    assert log_format(stream=FakeStream(terminal=True)) == "console"
    assert log_format(stream=FakeStream(terminal=False)) == "json"
    assert log_format(stream=io.StringIO()) == "json"
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty, open(os.devnull, "w") as null:
            assert log_format(stream=tty) == "console"  # a real pseudo-terminal
            assert log_format(stream=null) == "json"
    finally:
        os.close(master)
        os.close(slave)


def test_the_option_wins_then_the_variable_then_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeStream(terminal=True)
    monkeypatch.delenv("BASESHIFT_LOG_FORMAT", raising=False)
    assert log_format("json", stream=tty) == "json"
    assert log_format(default="console", stream=FakeStream(terminal=False)) == "console"
    monkeypatch.setenv("BASESHIFT_LOG_FORMAT", "json")
    assert log_format(stream=tty) == "json"
    assert log_format(default="console", stream=tty) == "json"
    assert log_format("console", stream=tty) == "console"
    monkeypatch.setenv("BASESHIFT_LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError, match="BASESHIFT_LOG_FORMAT has value 'yaml'"):
        log_format(stream=tty)


def record(message: str, *args: object, level: int = logging.INFO,
           **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("baseshift.test")
    return logger.makeRecord(logger.name, level, __file__, 1, message, args, None,
                             extra=extra or None)


def test_a_json_line_has_the_fields_and_the_bound_context() -> None:
    formatter = make_formatter("json")
    with acting_as(Acting("alice", "192.0.2.1", "req-12345678")), \
            log_bound(run_id="r1", job="build", attempt=2, worker_id=None):
        line = json.loads(formatter.format(record("run %s: %s", "r1", "done",
                                                  event="test.done", count=3)))
    assert list(line)[:5] == ["timestamp", "level", "logger", "message", "event"]
    assert line["level"] == "info" and line["logger"] == "baseshift.test"
    assert line["message"] == "run r1: done" and line["event"] == "test.done"
    assert line["count"] == 3
    assert (line["run_id"], line["job"], line["attempt"]) == ("r1", "build", 2)
    assert "worker_id" not in line  # a None value is not bound
    assert (line["actor"], line["request_id"]) == ("alice", "req-12345678")
    stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)
    assert log_fields() == {}  # unbound after the block


def test_a_json_line_is_one_line_with_its_traceback() -> None:
    formatter = make_formatter("json")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger = logging.getLogger("baseshift.test")
        rec = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed:\n%s",
                                ("\x1b[2J",), sys.exc_info())
    text = formatter.format(rec)
    assert "\n" not in text and "\x1b" not in text
    line = json.loads(text)
    assert line["message"] == "failed:\n\x1b[2J"
    assert "ValueError: bad\nthing" in line["exception"]


def test_a_console_line_is_escaped_and_shows_the_bound_context() -> None:
    with log_bound(run_id="r1", job="a\x1b"):
        text = make_formatter("console", timestamps=False).format(
            record("path /ui/%s", "\x1b[2J", level=logging.WARNING, route="/x"))
    assert text == "warning: path /ui/\\x1b[2J run_id=r1 job=a\\x1b"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the loggers back as they were: configure_logging changes the process's."""
    ours, root = logging.getLogger("baseshift"), logging.getLogger()
    saved = [(x, x.level, list(x.handlers)) for x in (ours, root)]
    yield
    for logger, level, handlers in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
    structlog.reset_defaults()


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging_routes_other_libraries_warnings_too() -> None:
    stream = io.StringIO()
    configure_logging("json", verbose=True, stream=stream)
    logging.getLogger("baseshift.test").info("ours")
    logging.getLogger("some.library").warning("theirs")
    logging.getLogger("some.library").info("not shown")
    structlog.stdlib.get_logger("baseshift.native").info("structlog's own", key=1)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [(x["logger"], x["message"]) for x in lines] == [
        ("baseshift.test", "ours"), ("some.library", "theirs"),
        ("baseshift.native", "structlog's own")]
    assert lines[2]["key"] == 1 and lines[2]["level"] == "info"


PROBE = '''import logging

def step():
    logging.getLogger("baseshift.steps.probe").warning("inside the step")
    return 1
'''


@pytest.mark.slow
def test_run_logs_json_unless_told_otherwise(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "probe_mod.py").write_text(PROBE)
    (tmp_path / "flow.bsw").write_text('workflow probe {\n  version "1.0.0"\n'
                                       '  job a uses python { with { function: '
                                       '"probe_mod:step" } }\n}\n')
    piped = run_cli("run", "flow.bsw", cwd=tmp_path)  # stderr is a pipe: JSON
    assert piped.exit_code == 0, piped.stderr
    [line] = [json.loads(x) for x in piped.stderr.splitlines() if x.startswith("{")]
    assert line["message"] == "inside the step" and line["logger"] == "baseshift.steps.probe"
    run_id = piped.stdout.split()[1]
    assert (line["run_id"], line["workflow"], line["job"], line["attempt"]) == (
        run_id, "probe", "a", 1)
    told = run_cli("run", "flow.bsw", "--log-format", "console", cwd=tmp_path)
    assert "warning: inside the step run_id=" in told.stderr, told.stderr
    by_env = run_cli("run", "flow.bsw", cwd=tmp_path, env={"BASESHIFT_LOG_FORMAT": "console"})
    assert "warning: inside the step run_id=" in by_env.stderr, by_env.stderr
    assert not any(x.startswith("{") for x in (told.stderr + by_env.stderr).splitlines())
