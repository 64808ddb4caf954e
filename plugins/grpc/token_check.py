"""The worker's gate: a gRPC server interceptor that answers UNAUTHENTICATED to any call
without the configured bearer token, before the call reaches the JobExecutor service."""
from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from .security import METADATA_KEY

log = logging.getLogger("baseshift.grpc")


class TokenCheck(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Lets a call through only when its `authorization` metadata is `Bearer <token>`.

    The comparison takes the same time whatever the sent value shares with the token, so
    timing does not reveal it; refusals are logged with the peer and the method, never with
    a token (sent or expected)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
            self, continuation: Callable[[Any], Awaitable[Any]],
            handler_call_details: Any) -> Any:
        sent = _bearer(handler_call_details.invocation_metadata or ())
        if sent is not None and hmac.compare_digest(sent, self._expected):
            return await continuation(handler_call_details)
        why = "no token was sent" if sent is None else "the token is wrong"
        return grpc.unary_unary_rpc_method_handler(_refuse(handler_call_details.method, why))


def _bearer(metadata: Any) -> bytes | None:
    for key, value in metadata:
        if key == METADATA_KEY:
            return value.encode() if isinstance(value, str) else bytes(value)
    return None


def _refuse(method: str, why: str) -> Callable[[Any, Any], Awaitable[None]]:
    async def refuse(request: Any, context: Any) -> None:
        log.warning("gRPC JobExecutor refused %s from %s: %s", method, context.peer(), why)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)

    return refuse
