"""The daily application of the retention policies, in a server, by one process of a fleet:
the one that leads "retention" (`Leadership`), checking at most every `interval` seconds
whether a day has passed since the last application recorded (a shared document when the
store keeps them), so a restart or a new leader does not apply them again early."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from baseshift.core.capabilities import Leadership
from baseshift.core.clock import Clock
from baseshift.core.periodic import Periodic
from baseshift.core.retention import DAY

from .service import Applied, apply_policies, documents_of, load_last, policy_of

if TYPE_CHECKING:
    from baseshift.core.appface import App

log = logging.getLogger("baseshift.retention")

ROLE = "retention"
"""The leadership role: one process of a fleet applies the policies."""
INTERVAL = 3600.0
"""Seconds between checks whether the policies are due."""


class DailyRetention(Periodic):
    """Applies the policies once a day while this process leads `retention`."""

    task_name = "baseshift-retention"
    failure = "applying the retention policies failed"

    def __init__(self, baseshift: App, clock: Clock | None = None,
                 interval: float = INTERVAL) -> None:
        super().__init__(clock, interval, log)
        self.bs = baseshift

    async def tick(self) -> Applied | None:
        """Apply the policies if this process leads and a day has passed since the last
        application; returns it, or None when nothing was due here."""
        store = self.bs.store
        if isinstance(store, Leadership) and not await store.lead(ROLE):
            return None
        now = self.clock.now().timestamp()
        last = await load_last(store, self.bs.settings.data_dir)
        if last is not None and now - last.applied_at < DAY:
            return None
        policy = policy_of(self.bs.settings)
        if not policy.days:
            return None
        done = await apply_policies(store, self.bs.templates, policy,
                                    self.bs.settings.data_dir, dry_run=False, now=now,
                                    documents=documents_of(self.bs))
        log.info("retention applied: removed %s, %d held", dict(done.removed), done.held)
        return done
