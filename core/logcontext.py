"""What every log line written now is about: the run, job and attempt, the worker, the trace.

A plain `ContextVar` of fields, bound for the length of a block (`log_bound`) and inherited
by the tasks started inside it, as `audit.acting` is. The kernel binds them where the work
happens (an attempt binds its run, workflow, job and attempt number) without knowing how
lines are written; the log formatter of the command line (core/app/logs.py) merges them, and
who is acting (`audit.acting`: actor, request id), into every line.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType

from .masking import Masker
from .tracecontext import trace_fields

_EMPTY: Mapping[str, object] = MappingProxyType({})
_FIELDS: ContextVar[Mapping[str, object]] = ContextVar("baseshift_log_fields", default=_EMPTY)
_MASKER: ContextVar[Masker | None] = ContextVar("baseshift_log_masker", default=None)


def log_fields() -> Mapping[str, object]:
    """The fields bound now (read-only), and the current span's trace and span ids when a
    trace is being recorded (core/tracecontext.py: worked out now, not at each attempt)."""
    traced = trace_fields()
    return {**_FIELDS.get(), **traced} if traced else _FIELDS.get()


@contextlib.contextmanager
def log_bound(**fields: object) -> Iterator[None]:
    """Add `fields` to every line logged until the block ends (a None value is left out);
    tasks started inside inherit them."""
    token = fields_added({k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        fields_removed(token)


def fields_added(fields: Mapping[str, object]) -> Token[Mapping[str, object]]:
    """`log_bound` without a block, for code that runs around every attempt and cannot
    afford a generator: add `fields` (no None value among them) until
    `fields_removed(token)`."""
    return _FIELDS.set(MappingProxyType({**_FIELDS.get(), **fields}))


def fields_removed(token: Token[Mapping[str, object]]) -> None:
    """Undo the `fields_added` that returned `token`."""
    _FIELDS.reset(token)


def log_masker() -> Masker | None:
    """The masker of the attempt whose work logs now, if any."""
    return _MASKER.get()


@contextlib.contextmanager
def log_masked(masker: Masker | None) -> Iterator[None]:
    """Mask `masker`'s secrets in every line logged until the block ends (it may learn more
    secrets meanwhile: they are masked from then on); None leaves lines as they are."""
    token = _MASKER.set(masker)
    try:
        yield
    finally:
        _MASKER.reset(token)
