"""The retention plugin's hooks: its permissions and routes, the daily application by the
leader (in a server), and the compliance controls `retention.configured`,
`retention.applied`, `retention.legal-hold` and `retention.erasure`."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from baseshift.core.capabilities import Erasure, LegalHolds, RetentionPolicies
from baseshift.core.compliance import Control
from baseshift.core.hookspecs import hookimpl
from baseshift.core.report import format_time
from baseshift.core.retention import DAY, KINDS, OPTIONS
from baseshift.core.stash import SERVING, StashKey

from .daily import INTERVAL, DailyRetention
from .service import load_last, policy_of

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.access import Permission
    from baseshift.core.appface import App

STASH_KEY: StashKey[DailyRetention] = StashKey("retention_daily")
"""`baseshift.stash[STASH_KEY]`: the running daily task."""
APPLIED_WITHIN = 2 * DAY
"""`retention.applied` holds when the policies were applied this recently."""


@hookimpl
def register_permissions() -> list[Permission]:
    from .routes import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()


@hookimpl
def startup(baseshift: App) -> None:
    """Check the policies (a bad table stops the start), then, in a server, start the daily
    task (`[plugins.retention] interval` seconds between checks; `clock` for tests)."""
    policy = policy_of(baseshift.settings)
    if not baseshift.stash.get(SERVING) or STASH_KEY in baseshift.stash or not policy.days:
        return
    options: dict[str, Any] = dict(baseshift.settings.extra.get(OPTIONS) or {})
    daily = DailyRetention(baseshift, clock=options.get("clock"),
                           interval=float(options.get("interval", INTERVAL)))
    baseshift.stash[STASH_KEY] = daily
    daily.start()


@hookimpl
async def shutdown(baseshift: App) -> None:
    daily = baseshift.stash.pop(STASH_KEY)
    if daily is not None:
        await daily.stop()


@hookimpl
async def compliance_controls(baseshift: App) -> list[Control]:
    policy = policy_of(baseshift.settings)
    store = baseshift.store
    able = isinstance(store, RetentionPolicies)
    kinds = ", ".join(f"{k} {policy.days[k]:g} days" for k in KINDS if k in policy.days)
    unset = [k for k in KINDS if k not in policy.days]
    configured = Control(
        "retention.configured", "Retention periods are set for stored data",
        "implemented" if policy.days and able else "pending",
        (f"policies: {kinds}" + (f"; kept forever: {', '.join(unset)}" if unset else "")
         if policy.days else "no [plugins.retention] policy: every kind is kept forever")
        + ("" if able else f"; the {store.name!r} store cannot apply them"),
        {"GDPR": ("Article 5(1)(e)",), "HIPAA": ("164.316(b)(2)",), "SOC 2": ("C1.2",)})
    last = await load_last(store, baseshift.settings.data_dir)
    recent = last is not None and time.time() - last.applied_at <= APPLIED_WITHIN
    applied = Control(
        "retention.applied", "The retention policies were applied within the last 2 days",
        "implemented" if recent else "pending",
        "never applied" if last is None else
        f"last applied {format_time(last.applied_at)}: removed "
        + (", ".join(f"{k} {n}" for k, n in sorted(last.removed.items())) or "nothing")
        + f"; {last.held} run(s) kept on legal hold",
        {"GDPR": ("Article 5(1)(e)",), "HIPAA": ("164.316(b)(2)",),
         "SOC 2": ("CC6.5", "C1.2")})
    controls = [configured, applied]
    if isinstance(store, LegalHolds):
        holds = await store.legal_holds()
        controls.append(Control(
            "retention.legal-hold", "Runs under legal hold are exempt from retention",
            "implemented", f"{len(holds)} run(s) on legal hold",
            {"HIPAA": ("164.316(b)(2)",), "SOC 2": ("C1.2",)}))
    controls.append(Control(
        "retention.erasure", "A run's personal data can be erased on request",
        "implemented" if isinstance(store, Erasure) else "pending",
        f"DELETE /api/v1/workflows/{{run_id}}/data and `baseshift erase` on the "
        f"{store.name!r} store" if isinstance(store, Erasure)
        else f"the {store.name!r} store cannot erase runs",
        {"GDPR": ("Article 17",), "SOC 2": ("CC6.5",)}))
    return controls
