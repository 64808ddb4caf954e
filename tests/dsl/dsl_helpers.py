"""Shared helpers for the DSL tests: the executors files are checked against."""
from __future__ import annotations

from typing import Any

from baseshift.dsl import CheckEnv, Compiled, compile_source

EXECUTORS: dict[str, dict[str, Any]] = {
    "python": {"type": "object", "properties": {"function": {"type": "string"}},
               "required": ["function"], "additionalProperties": True},
    "shell": {"type": "object", "properties": {"command": {"type": "string"},
                                               "timeout": {"type": "number"}},
              "required": ["command"], "additionalProperties": True},
    "http": {"type": "object",
             "properties": {"url": {"type": "string"}, "method": {"type": "string"},
                            "headers": {"type": "object"}, "json": {},
                            "timeout": {"type": ["number", "null"]}},
             "required": ["url"], "additionalProperties": False},
}
ENV = CheckEnv(EXECUTORS)


def compile_text(source: str, path: str = "test.bsw") -> Compiled:
    return compile_source(source, path, ENV)


def codes(source: str) -> list[str]:
    return [d.code for d in compile_text(source).diagnostics]
