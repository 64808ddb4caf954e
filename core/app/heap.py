"""The garbage collector's settings for a process that runs Base Shift (`tune_gc`, on by
default; docs/configuration.md).

Why: an engine keeps the state of the runs it executes in memory, and CPython's default
thresholds (700, 10, 10) collect the young objects every 700 net allocations and walk the
whole heap (every module, plugin and compiled plan of the process too) whenever a quarter
as many objects as it holds have been promoted since the last time. A large fan-out's state
keeps the promotions coming, so the full collections come again and again: on
`bench/engine.py`'s fan-out of 16,000 no-op jobs (pinned to one core) a job took 146 to
153 µs of CPU, 126 with the collector off. Here, once the application has started, what
exists is frozen (it lives as long as the process: no collection need walk it again) and
the thresholds are raised: 128 µs a job at 16,000 jobs, and 128.5 → 122.2 at 1,000
(`--default-gc` measures without).
Reference counting still frees almost everything at once; only garbage in reference
cycles waits longer, for at most `YOUNG` more allocations.
"""
from __future__ import annotations

import gc

YOUNG = 50_000
"""Net allocations of tracked objects between two collections of the young generation."""
MIDDLE = 20
OLD = 20
"""Collections of the generation below between two of the one above (the oldest one is
also collected only when a quarter as many objects as it holds are new to it)."""

_settled = False


def settle_heap() -> None:
    """Freeze the objects that exist and raise the collector's thresholds, once per
    process (the first application started)."""
    global _settled
    if not _settled:
        _settled = True
        gc.freeze()
        gc.set_threshold(YOUNG, MIDDLE, OLD)
