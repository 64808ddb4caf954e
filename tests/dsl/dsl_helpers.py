"""Shared helpers for the DSL tests: the executors files are checked against."""
from __future__ import annotations

from typing import Any

from baseshift.dsl import CheckEnv, Compiled, compile_source
from baseshift.plugins.executors.http import HttpExecutor
from baseshift.plugins.executors.python import PythonExecutor
from baseshift.plugins.executors.shell import ShellExecutor

EXECUTORS: dict[str, dict[str, Any]] = {
    cls.name: cls.config_schema for cls in (PythonExecutor, ShellExecutor, HttpExecutor)}
"""The builtin executors' real schemas, so golden files show what users see."""
ENV = CheckEnv(EXECUTORS)


def compile_text(source: str, path: str = "test.bsw") -> Compiled:
    return compile_source(source, path, ENV)


def codes(source: str) -> list[str]:
    return [d.code for d in compile_text(source).diagnostics]
