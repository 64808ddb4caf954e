"""The alert API: the rules and their current alerts (`alerts:read`); creating, changing,
deleting a rule and sending a test notification (`alerts:admin`, each audited).

A reader without `alerts:admin` sees a webhook target's host only: its path or query may
hold a token (chat webhooks are such URLs)."""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.access import SERVER, Permission
from baseshift.web.access import actor_of, requires
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .evaluator import send_test
from .rules import KINDS, MAX_TARGETS, Rule, check_name, parse_rule
from .service import Alerting, alerting_of
from .state import Alert

ALERTS_READ = Permission("alerts:read", "see the alert rules and the alerts firing")
ALERTS_ADMIN = Permission("alerts:admin", "create, change and delete alert rules; send "
                          "test notifications")
PERMISSIONS = (ALERTS_READ, ALERTS_ADMIN)

TAGS = ["alerts"]
OPEN = {"type": "object", "additionalProperties": True}
POSITIVE = {"type": "number", "exclusiveMinimum": 0}
TARGET = {"type": "object", "required": ["type"], "additionalProperties": True,
          "properties": {"type": {"type": "string", "description": "a notifier: webhook "
                                  "(url, secret), email (to; needs [plugins.alerts.smtp])"}}}
RULE_FIELDS = {
    "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    "kind": {"enum": list(KINDS), "description": "no_worker needs queue = \"postgres\""},
    "params": {"type": "object", "description": "the parameters of the kind "
               "(docs/operations.md, Alert rules)"},
    "notify": {"type": "array", "maxItems": MAX_TARGETS, "items": TARGET},
    "enabled": {"type": "boolean"}, "repeat": POSITIVE,
    "for": {"type": "number", "minimum": 0}}
RULE_BODY = obj(RULE_FIELDS, ("name", "kind"), closed=True)
REPLACE_BODY = obj({k: v for k, v in RULE_FIELDS.items() if k != "name"}, ("kind",),
                   closed=True)
ALERT = obj({"fingerprint": {"type": "string"}, "subject": {"type": "string"},
             "status": {"enum": ["pending", "firing", "resolved"]},
             "since": {"type": "number"}, "value": {"type": ["number", "null"]}},
            ("fingerprint", "subject", "status", "since", "value"))
RULE = obj({"name": {"type": "string"}, "kind": {"type": "string"}, "params": OPEN,
            "notify": {"type": "array", "items": OPEN}, "enabled": {"type": "boolean"},
            "alerts": {"type": "array", "items": ALERT}},
           ("name", "kind", "params", "notify", "enabled"))
RULES = obj({"rules": {"type": "array", "items": RULE}}, ("rules",))
TESTED = obj({"results": {"type": "array", "items": OPEN}}, ("results",))
NAME = {"name": {"type": "string", "description": "the rule's name"}}


def _masked(target: dict[str, Any]) -> dict[str, Any]:
    if "url" not in target:
        return target
    parts = urlsplit(str(target["url"]))
    return {**target, "url": f"{parts.scheme}://{parts.netloc}/…"}


def _alert_json(alert: Alert) -> dict[str, Any]:
    return {"fingerprint": alert.fingerprint, "subject": alert.subject,
            "status": alert.status.value, "since": alert.since, "value": alert.value,
            "started_at": alert.started_at, "last_sent": alert.last_sent,
            "notice_owed": alert.owed}


async def _rule_json(request: Request, rule: Rule, alerts: list[Alert]) -> dict[str, Any]:
    data = rule.to_json()
    if not await baseshift_of(request).hooks.authorize(actor_of(request), ALERTS_ADMIN.name,
                                                       SERVER):
        data["notify"] = [_masked(t) for t in data["notify"]]
    data["alerts"] = [_alert_json(a) for a in sorted(alerts, key=lambda a: a.since)]
    return data


def _alerting(request: Request) -> Alerting:
    return alerting_of(baseshift_of(request))


async def _parsed(request: Request, name: str | None = None) -> Rule:
    body = json_object(await read_json(request), "body")
    alerting = _alerting(request)
    return parse_rule(body, alerting.notifiers, alerting.refuse_kind, time.time(), name)


@requires(ALERTS_READ)
@operation("List the alert rules, each with its current alerts (pending, firing, resolved)",
           tags=TAGS, response=RULES)
async def list_rules(request: Request) -> Response:
    alerting = _alerting(request)
    alerts = await alerting.alerts_by_rule()
    return JSONResponse({"rules": [await _rule_json(request, r, alerts.get(r.name, []))
                                   for r in await alerting.storage.rules()]})


@requires(ALERTS_ADMIN)
@operation("Create an alert rule", tags=TAGS, request=RULE_BODY, response=RULE, status=201,
           errors=(400, 409, 422))
async def create_rule(request: Request) -> Response:
    rule = await _parsed(request)
    await _alerting(request).create(rule)
    return JSONResponse(await _rule_json(request, rule, []), status_code=201)


@requires(ALERTS_READ)
@operation("Read an alert rule and its current alerts", tags=TAGS, response=RULE,
           errors=(404,), path=NAME)
async def read_rule(request: Request) -> Response:
    alerting = _alerting(request)
    rule = await alerting.rule(request.path_params["name"])
    alerts = await alerting.alerts_by_rule()
    return JSONResponse(await _rule_json(request, rule, alerts.get(rule.name, [])))


@requires(ALERTS_ADMIN)
@operation("Replace an alert rule (its alerts are re-evaluated at the next round)",
           tags=TAGS, request=REPLACE_BODY, response=RULE, errors=(400, 404, 422), path=NAME)
async def replace_rule(request: Request) -> Response:
    name = check_name(request.path_params["name"], "name")
    rule = await _alerting(request).replace(await _parsed(request, name))
    alerts = await _alerting(request).alerts_by_rule()
    return JSONResponse(await _rule_json(request, rule, alerts.get(rule.name, [])))


@requires(ALERTS_ADMIN)
@operation("Delete an alert rule (its alerts go with it)", tags=TAGS, status=204,
           errors=(404,), path=NAME)
async def delete_rule(request: Request) -> Response:
    await _alerting(request).delete(request.path_params["name"])
    return Response(status_code=204)


@requires(ALERTS_ADMIN)
@operation("Send a test notification to each target of an alert rule", tags=TAGS,
           response=TESTED, errors=(404,), path=NAME, body_required=False)
async def test_rule(request: Request) -> Response:
    alerting = _alerting(request)
    rule = await alerting.rule(request.path_params["name"])
    failures = await send_test(rule, alerting.notifiers, time.time())
    results = [{"type": t.get("type"), "ok": why is None, "error": why}
               for t, why in zip(rule.notify, failures, strict=True)]
    outcome = audit.SUCCESS if all(w is None for w in failures) else audit.FAILURE
    await audit.record(alerting.storage.store, [audit.entry(
        "alert.test", f"alert:{rule.name}", outcome,
        delivered=str(sum(1 for w in failures if w is None)), targets=str(len(failures)))])
    return JSONResponse({"results": results})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/alerts", list_rules, methods=["GET"], name="alerts:list"),
        Route("/api/v1/alerts", create_rule, methods=["POST"], name="alerts:create"),
        Route("/api/v1/alerts/{name}", read_rule, methods=["GET"], name="alerts:read"),
        Route("/api/v1/alerts/{name}", replace_rule, methods=["PUT"], name="alerts:replace"),
        Route("/api/v1/alerts/{name}", delete_rule, methods=["DELETE"], name="alerts:delete"),
        Route("/api/v1/alerts/{name}/test", test_rule, methods=["POST"], name="alerts:test"),
    ]
