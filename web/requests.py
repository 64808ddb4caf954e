"""Reading request bodies and query parameters into plain values, with clear 400s."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection, Request

from baseshift.core.errors import BadRequest, InputError
from baseshift.core.json_text import refuse_surrogates

if TYPE_CHECKING:
    from baseshift.core.appface import App

from .guards import MAX_BODY


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest(f"the body is larger than {MAX_BODY // (1024 * 1024)} MiB")
    return body


async def read_json(request: Request, *, default: Any = None) -> Any:
    """The request's JSON body; `default` for an empty body. BadRequest if it is not JSON;
    InputError (422) naming the field when a string holds a lone surrogate (`"\\ud800"`),
    text that cannot be stored or shown."""
    content_type = request.headers.get("content-type", "")
    body = await _body(request)
    if not body.strip():
        return default
    if content_type and "json" not in content_type.split(";")[0]:
        raise BadRequest(f"expected a JSON body, got content type {content_type!r}",
                         hint="send Content-Type: application/json")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if b"\\u" in body or not body.isascii():  # else no string in it can hold a surrogate
        refuse_surrogates(value)
    return value


async def read_form(request: Request) -> dict[str, str]:
    """A submitted HTML form (`application/x-www-form-urlencoded`, what every form of the UI
    sends) as field -> value, the last value winning as in Starlette's form data.

    Read with the standard library, so the plain install needs no multipart parser; any other
    content type is a BadRequest."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request)
    if body and content_type != "application/x-www-form-urlencoded":
        raise BadRequest(f"expected a form, got content type {content_type or 'none'!r}",
                         hint="send Content-Type: application/x-www-form-urlencoded")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the form is not valid UTF-8 URL-encoded text: {exc}") from None


def json_object(value: Any, what: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else InputError naming `what`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object, got {type(value).__name__}",
                         details={"field": what})
    return value


def baseshift_of(request: HTTPConnection) -> App:
    """The application serving this request (set by `create_app`)."""
    bs: App = request.app.state.baseshift
    return bs


def only_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """InputError naming the first field of `body` that is not in `allowed`."""
    extra = sorted(set(body) - allowed)
    if extra:
        raise InputError(f"unknown field '{extra[0]}'; expected: {', '.join(sorted(allowed))}",
                         details={"field": extra[0]})
