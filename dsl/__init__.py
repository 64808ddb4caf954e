"""The workflow language: parse `.bsw` files, check them, compile them to Plans.

The engine and the CLI use only what is exported here.
"""
from __future__ import annotations

from baseshift.core.compiled import CheckEnv, Compiled

from .compile import compile_files, compile_source
from .parser import parse_expression
from .render import render_plan

__all__ = ["CheckEnv", "Compiled", "compile_files", "compile_source", "parse_expression",
           "render_plan"]
