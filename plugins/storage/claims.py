"""Who executes a run: per-run claims for the embedded stores.

A claim is an exclusive `flock` on `<folder>/<run_id>.lock`, held by the process executing
the run for as long as it runs. The OS drops the lock when that process dies, however it
dies, so `baseshift resume` can tell an orphaned run (claim free) from one another process
is still executing (claim held) without trusting any stored "owner" field.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from baseshift.core.storecalls import StoreCalls, observed


class LocalClaims:
    """Claims inside one process (in-memory stores: no other process can see the runs)."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    def holds(self, run_id: str) -> bool:
        return run_id in self._held

    def claim(self, run_id: str) -> bool:
        if run_id in self._held:
            return False
        self._held.add(run_id)
        return True

    def release(self, run_id: str) -> None:
        self._held.discard(run_id)

    def release_all(self) -> None:
        self._held.clear()


class FileClaims:
    """Claims shared by every process on this machine that uses the same data folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fds: dict[str, int] = {}

    def holds(self, run_id: str) -> bool:
        return run_id in self._fds

    def claim(self, run_id: str) -> bool:
        if run_id in self._fds:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / f"{_safe(run_id)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fds[run_id] = fd
        return True

    def release(self, run_id: str) -> None:
        fd = self._fds.pop(run_id, None)
        if fd is None:
            return
        # Unlink while still holding the lock, so a finished run leaves no file behind.
        try:
            (self.folder / f"{_safe(run_id)}.lock").unlink(missing_ok=True)
        finally:
            os.close(fd)

    def release_all(self) -> None:
        for run_id in list(self._fds):
            self.release(run_id)


class ClaimedRuns:
    """The StateStore methods about who executes a run, for the stores that keep claims in
    this machine (`_claims`, set by the store)."""

    _claims: LocalClaims | FileClaims
    calls: StoreCalls

    @observed("claim_run")
    async def claim_run(self, run_id: str) -> bool:
        return self._claims.claim(run_id)

    @observed("release_run")
    async def release_run(self, run_id: str) -> None:
        self._claims.release(run_id)

    @observed("lead")
    async def lead(self, role: str) -> bool:
        """Whether this process leads `role` (the cron scheduler, say): the first process to
        ask becomes the leader and stays it until it stops; a claim, like a run's, named
        `~lead-ROLE`."""
        key = f"~lead-{role}"
        return self._claims.holds(key) or self._claims.claim(key)


def _safe(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
