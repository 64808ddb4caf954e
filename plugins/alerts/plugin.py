"""The alerts plugin's hooks: its permissions and routes, the builtin notifiers (`webhook`,
`email`), the evaluation by the leader of "alerts" (in a server), the ready jobs followed
for `queue_lag` without a queue, and `baseshift_alerts_firing{rule}` when the metrics
plugin is active."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baseshift.core.config import option
from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING

from .service import OPTIONS, alerting_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.routing import BaseRoute

    from baseshift.core.access import Permission
    from baseshift.core.appface import App
    from baseshift.core.events import Event
    from baseshift.core.notifications import Notifier


@hookimpl
def configure(baseshift: App) -> None:
    """A bad `[plugins.alerts]` table stops the start, naming the key."""
    from .smtp import SmtpSettings

    for key, default in (("interval", 1.0), ("webhook_timeout", 1.0),
                         ("webhook_retry_delay", 1.0)):
        option(baseshift.settings, OPTIONS, key, default)
    option(baseshift.settings, OPTIONS, "webhook_attempts", 1)
    SmtpSettings.from_options((baseshift.settings.extra.get(OPTIONS) or {}).get("smtp"))


@hookimpl
def register_permissions() -> list[Permission]:
    from .routes import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()


@hookimpl
def register_notifiers(baseshift: App) -> list[Notifier]:
    from .smtp import EmailNotifier, SmtpSettings
    from .webhook import WebhookNotifier

    settings = baseshift.settings
    resolve = baseshift.hooks.resolve_secret
    opts: dict[str, Any] = dict(settings.extra.get(OPTIONS) or {})
    return [WebhookNotifier(resolve, timeout=option(settings, OPTIONS, "webhook_timeout", 10.0),
                            attempts=option(settings, OPTIONS, "webhook_attempts", 3),
                            retry_delay=option(settings, OPTIONS, "webhook_retry_delay", 1.0)),
            EmailNotifier(SmtpSettings.from_options(opts.get("smtp")), resolve)]


@hookimpl
def startup(baseshift: App) -> None:
    """In a server, start the evaluations; expose the firing alerts to the metrics."""
    alerting = alerting_of(baseshift)
    from .metrics import expose

    expose(baseshift, alerting.evaluator)
    if baseshift.stash.get(SERVING):
        alerting.evaluator.start()


@hookimpl
async def shutdown(baseshift: App) -> None:
    from .service import ALERTING

    alerting = baseshift.stash.get(ALERTING)
    if alerting is not None:
        await alerting.evaluator.stop()


@hookimpl
def track_events(baseshift: App, events: Sequence[Event]) -> None:
    alerting_of(baseshift).ready.observe_all(events)
