"""Webhook trigger: `POST /api/v1/hooks/{workflow}` starts a run of a workflow that declares
`webhook secret NAME`.

The caller proves it knows the secret NAME (resolved through the `resolve_secret` hook:
an environment variable by default) with either header

- `X-BaseShift-Secret: <the secret>`, or
- `X-BaseShift-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>`
  (`X-Hub-Signature-256`, as GitHub sends it, is read the same way).

Both are compared in constant time. The JSON body (may be empty) is the run's inputs. The
answer is 202 with the run's id even when the workflow's run limit queues or cancels it
(`on conflict cancel-new`): the caller can follow the run at `status_url`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.errors import Conflict, NotFound, Unauthorized
from baseshift.core.plan import Plan
from baseshift.web.access import public
from baseshift.web.openapi import operation
from baseshift.web.requests import json_object, read_json
from baseshift.web.schemas import STARTED, run_response

if TYPE_CHECKING:
    from baseshift.core.appface import App

log = logging.getLogger("baseshift.webhook")

SECRET_HEADER = "x-baseshift-secret"
SIGNATURE_HEADERS = ("x-baseshift-signature", "x-hub-signature-256")
INPUTS = {"type": "object", "description": "the run's inputs", "additionalProperties": True}


@public("a webhook call proves itself with the workflow's secret or HMAC signature")
@operation("Start a run from a webhook call (secret or HMAC signature required)",
           tags=["triggers"], request=INPUTS, response=STARTED, status=202,
           errors=(400, 401, 404, 409, 422))
async def receive(request: Request) -> Response:
    bs: App = request.app.state.baseshift
    name = request.path_params["workflow"]
    plan = _webhook_plan(bs, name)
    assert plan.webhook is not None
    secret = await bs.hooks.resolve_secret(plan.webhook.secret)
    if not secret:
        log.warning("webhook of %s refused: secret %s is not set", name, plan.webhook.secret)
        raise Unauthorized(f"the webhook of workflow '{name}' has no secret configured on "
                           "the server", hint=f"set the secret {plan.webhook.secret}")
    if not any(h in request.headers for h in (SECRET_HEADER, *SIGNATURE_HEADERS)):
        raise Unauthorized("missing webhook secret", hint=AUTH_HINT)  # before reading a body
    body = await request.body()
    if not _authentic(request, body, secret):
        raise Unauthorized("missing or wrong webhook secret", hint=AUTH_HINT)
    inputs = json_object(await read_json(request), "body")
    run_id = await bs.runs.start(name, inputs)
    return run_response(run_id, 202)


AUTH_HINT = ("send the header X-BaseShift-Secret, or X-BaseShift-Signature: "
             "sha256=<HMAC-SHA256 of the body>")


def _webhook_plan(bs: App, name: str) -> Plan:
    """The plan of a loaded workflow with a webhook; NotFound or Conflict otherwise (the
    file's errors are not shown to a caller that has not proven anything yet)."""
    entry = bs.catalog.get(name)
    if entry.plan is None:
        raise Conflict(f"workflow '{name}' has errors; it cannot be triggered until they "
                       "are fixed")
    if entry.plan.webhook is None:
        raise NotFound(f"workflow '{name}' has no webhook",
                       hint="declare one in the workflow: webhook secret NAME")
    return entry.plan


def _authentic(request: Request, body: bytes, secret: str) -> bool:
    key = secret.encode()
    given = request.headers.get(SECRET_HEADER)
    if given is not None and hmac.compare_digest(given.encode(), key):
        return True
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    for header in SIGNATURE_HEADERS:
        signature = request.headers.get(header)
        if signature is not None and hmac.compare_digest(signature.strip().lower().encode(),
                                                         expected.encode()):
            return True
    return False


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/hooks/{workflow}", receive, methods=["POST"],
                  name="trigger_webhook:receive")]
