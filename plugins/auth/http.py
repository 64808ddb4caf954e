"""What the auth plugin's API routes and pages share about a request."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request

from baseshift.core.errors import BadRequest
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json

from .state import AUTH, AuthState


def auth_of(request: Request) -> AuthState:
    """The auth plugin's state in the application serving `request`."""
    return baseshift_of(request).stash[AUTH]


def client_of(request: Request) -> str:
    """The client's address, which failed sign-ins are throttled by."""
    return request.client.host if request.client is not None else "unknown"


async def json_body(request: Request, fields: set[str]) -> dict[str, Any]:
    """The request's JSON object, holding only `fields`; a missing body is a 400 (every
    auth and admin call has required fields, so none is ever empty)."""
    raw = await read_json(request)
    if raw is None:
        raise BadRequest("this request needs a JSON body",
                         hint="send Content-Type: application/json with an object")
    body = json_object(raw, "body")
    only_fields(body, fields)
    return body
