"""Authentication before routing: the `authenticate` hook names the request's actor once,
and every view's `@requires` check (web/access.py) reads it from the scope.

Two things a credential carried by the browser (a session cookie) needs beyond that, done
here for any plugin: its CSRF token must come back with every state-changing request (the
`X-CSRF-Token` header htmx sends, or the `csrf_token` field of a form), and a plugin that
renewed the session while authenticating leaves the new cookies in the scope
(`SET_COOKIES_KEY`) to be sent with the response.

The rest of the request then acts for that actor (core/audit.py `acting_as`): the audit
entries of what it changes name the actor, the client's address and the request id, which
every response carries as `X-Request-ID` (web/accesslog.py adds it, refusals included; a
well-formed one sent by a proxy is kept)."""
from __future__ import annotations

import hmac
import re
import uuid
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baseshift.core.access import ANONYMOUS, Actor
from baseshift.core.audit import Acting, acting_as
from baseshift.core.errors import BaseShiftError, Unauthorized

from .access import ACTOR_KEY
from .guards import MAX_BODY, SAFE_METHODS, PayloadTooLarge, too_large_text
from .problems import problem
from .requests import baseshift_of

SET_COOKIES_KEY = "baseshift.set_cookies"
"""Scope key: `Set-Cookie` header values an `authenticate` implementation wants sent."""
CSRF_CLAIM = "csrf"
"""An actor claim: the CSRF token its (cookie-borne) credential requires."""
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
FORM_TYPE = "application/x-www-form-urlencoded"
REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
REQUEST_ID_KEY = "baseshift.request_id"
"""Scope key: the request's id, once given (web/accesslog.py gives it first)."""


class Authentication:
    """ASGI middleware: put the actor the plugins recognise (or the anonymous one) in the
    scope. A credential a plugin owns but refuses (expired, revoked, forged) is a 401 at
    once: a request with a bad token is never served as anonymous."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope, receive)
        try:
            actor = await baseshift_of(conn).hooks.authenticate(conn)
        except Unauthorized as exc:
            refusal = problem(401, exc.message, code=exc.code, hint=exc.hint,
                              instance=conn.url.path)
            refusal.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return await refusal(scope, receive, send)
        actor = actor or ANONYMOUS
        scope[ACTOR_KEY] = actor
        rid = request_id(conn)
        send = _with_cookies(scope, send)
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            try:
                receive, refused = await _csrf_checked(scope, receive, actor)
            except BaseShiftError as exc:  # a body over the size limit, read for the token
                return await problem(exc.status, exc.message, code=exc.code,
                                     hint=exc.hint)(scope, receive, send)
            if refused:
                return await problem(
                    403, "the request lacks this page's CSRF token", code="request.csrf",
                    hint="reload the page and submit it again; scripts should send an "
                         "Authorization header instead of the session cookie"
                )(scope, receive, send)
        client = conn.client.host if conn.client else None
        with acting_as(Acting(actor.name, client, rid)):
            await self.app(scope, receive, send)


def request_id(conn: HTTPConnection) -> str:
    """The request's id: a well-formed `X-Request-ID` a proxy sent, else a new one; the
    same for the whole request (kept in the scope)."""
    known = conn.scope.get(REQUEST_ID_KEY)
    if isinstance(known, str):
        return known
    sent = conn.headers.get(REQUEST_ID_HEADER, "")
    rid = sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
    conn.scope[REQUEST_ID_KEY] = rid
    return rid


def _with_cookies(scope: Scope, send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            cookies = scope.get(SET_COOKIES_KEY) or ()
            message["headers"] = [*message.get("headers", []),
                                  *((b"set-cookie", c.encode("latin-1")) for c in cookies)]
        await send(message)

    return sending


async def _csrf_checked(scope: Scope, receive: Receive, actor: Actor
                        ) -> tuple[Receive, bool]:
    """The receive channel to pass on (the body replayed if it was read for the form field)
    and whether the request is refused."""
    expected = actor.claims.get(CSRF_CLAIM)
    if not isinstance(expected, str):
        return receive, False
    headers = Headers(scope=scope)
    sent = headers.get(CSRF_HEADER)
    if sent is None and headers.get("content-type", "").startswith(FORM_TYPE):
        body, receive = await _buffered(receive)
        sent = next(iter(parse_qs(body.decode("latin-1")).get(CSRF_FIELD, [])), None)
    return receive, not (sent and hmac.compare_digest(sent, expected))


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body (up to the size limit) and a receive channel that replays it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY:  # never replay a cut body: refuse it (RequestGuard's 413)
            raise PayloadTooLarge(too_large_text(MAX_BODY))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
