"""What the auth plugin's API routes and pages share about a request."""
from __future__ import annotations

from starlette.requests import Request

from baseshift.web.requests import baseshift_of

from .state import AUTH, AuthState


def auth_of(request: Request) -> AuthState:
    """The auth plugin's state in the application serving `request`."""
    return baseshift_of(request).stash[AUTH]


def client_of(request: Request) -> str:
    """The client's address, which failed sign-ins are throttled by."""
    return request.client.host if request.client is not None else "unknown"
