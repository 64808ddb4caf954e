"""The log store of the memory state store (core/capabilities.py `LogLines`): a list of
lines, searched by the reference meaning (`core.loglines.select_lines`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from baseshift.core.loglines import LogLine, LogPage, LogSearch, select_lines
from baseshift.core.storecalls import StoreCalls, observed

MAX_LINES = 100_000
"""Lines the memory store keeps at most (the oldest go first): it lives in the process, and
without a limit a server running for weeks would grow with its log."""


class MemoryLogLines:
    """Lines in insertion order; their ids count from 1."""

    calls: StoreCalls

    _log_lines: list[LogLine]
    _log_next: int
    max_log_lines = MAX_LINES

    @observed("append_log_lines")
    async def append_log_lines(self, lines: Sequence[LogLine]) -> None:
        for line in lines:
            self._log_next += 1
            self._log_lines.append(replace(line, id=self._log_next))
        over = len(self._log_lines) - self.max_log_lines
        if over > 0:
            del self._log_lines[:over]

    @observed("search_log_lines")
    async def search_log_lines(self, search: LogSearch) -> LogPage:
        return select_lines(self._log_lines, search)

    def _drop_log_lines(self, run_id: str) -> None:
        self._log_lines = [x for x in self._log_lines if x.fields.get("run_id") != run_id]

    def _prune_log_lines(self, before: float, held: set[str], dry_run: bool) -> int:
        """Remove the lines older than `before`, except those of the `held` runs."""
        kept = [x for x in self._log_lines
                if x.timestamp >= before or x.fields.get("run_id") in held]
        removed = len(self._log_lines) - len(kept)
        if not dry_run:
            self._log_lines = kept
        return removed
