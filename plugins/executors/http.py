"""The `http` step type: send one HTTP request and return the response as data.

```
job notify uses http {
  with {
    url: "https://api.example.com/orders"    # required, http:// or https://
    method: "POST"                            # GET (default) HEAD POST PUT PATCH DELETE OPTIONS
    headers: { Authorization: "Bearer ${secret.TOKEN}" }
    query: { page: 2, tag: ["a", "b"] }       # added to the URL's own query string
    json: { id: 7 }                           # JSON body; or body: "raw text" (not both)
    timeout: 10                               # seconds for the whole request; default 30
    expect_status: [200, 404]                 # integer or list; default any 2xx
    follow_redirects: true                    # default false
  }
}
```

Output, always this shape:

```
{"status": 200,
 "headers": {"content-type": "application/json", ...},   # names lower-case; repeated
                                                         # headers joined with ", "
 "body": ...}
```

`body` is the response body parsed as JSON when it parses (whatever the content type says),
else its text decoded with the response's charset (UTF-8 by default), and null when the body
is empty. Bodies over 10 MiB fail the attempt rather than fill the store.

A `json` body is sent with `content-type: application/json` unless `headers` sets one. A
status not in `expect_status` fails the attempt with the status and a body excerpt; so does
a redirect when `follow_redirects` is false. Connection errors, DNS failures and timeouts
fail it with the URL and the reason. Request headers and query values are never logged: they
often carry secrets.

One `httpx.AsyncClient` (and its connection pool) is shared by every attempt of an executor
instance; it is created on first use and closed by `aclose()`. On cancel the request is
abandoned and its connection closed.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from baseshift.core.errors import ExecutionError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.json_text import loads_strict
from baseshift.core.protocols import JobContext, JobResult
from baseshift.core.tracecontext import traceparent

if TYPE_CHECKING:
    import httpx

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_TIMEOUT = 30.0
MAX_BODY = 10 * 1024 * 1024
EXCERPT_CHARS = 500

_SCALAR = {"type": ["string", "number", "boolean"]}
_INT_OR_LIST = {"oneOf": [{"type": "integer", "minimum": 100, "maximum": 599},
                          {"type": "array", "minItems": 1,
                           "items": {"type": "integer", "minimum": 100, "maximum": 599}}]}


@dataclass(frozen=True, slots=True)
class _Request:
    """A checked `with` block."""

    method: str
    url: str
    headers: dict[str, str]
    query: dict[str, Any]
    content: bytes | None
    timeout: float
    expect: frozenset[int] | None
    follow_redirects: bool

    @property
    def label(self) -> str:
        return f"{self.method} {_display_url(self.url)}"


class HttpExecutor:
    """Sends the request described by the `with` block with a shared `httpx.AsyncClient`."""

    name: ClassVar[str] = "http"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://."},
            "method": {"type": "string", "enum": list(METHODS)},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "query": {"type": "object", "additionalProperties": {
                "oneOf": [_SCALAR, {"type": "array", "items": _SCALAR}]}},
            "json": {"description": "Any JSON value, sent as the request body."},
            "body": {"type": "string"},
            "timeout": {"type": "number", "exclusiveMinimum": 0},
            "expect_status": _INT_OR_LIST,
            "follow_redirects": {"type": "boolean"},
        },
        "required": ["url"],
        "not": {"required": ["json", "body"]},
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared client, created on first use (and again after `aclose`)."""
        if self._client is None or self._client.is_closed:
            self._client = self.make_client()
        return self._client

    def make_client(self) -> httpx.AsyncClient:
        """Build the shared client; a subclass may override it (certificates, proxies, a
        mock transport in tests). Per-request settings are passed with each request."""
        import httpx  # here, not at the top: `check` and `serve` never need it

        return httpx.AsyncClient()

    async def aclose(self) -> None:
        """Close the shared client and its connections; the next request opens a new one."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def execute(self, ctx: JobContext) -> JobResult:
        request = _parse_config(ctx.config)
        ctx.log(request.label)
        response, raw = await self._send(request)
        ctx.log(f"{response.status_code} {response.reason_phrase} ({len(raw)} bytes)")
        body = _parse_body(response, raw)
        _check_status(request, response, body)
        output = {"status": response.status_code,
                  "headers": dict(response.headers.items()), "body": body}
        return JobResult(output=output, log="\n".join(ctx.lines))

    async def _send(self, request: _Request) -> tuple[httpx.Response, bytes]:
        """Send the request and read its body, turning every transport problem into data."""
        import httpx

        try:
            async with asyncio.timeout(request.timeout):
                return await self._exchange(request)
        except (TimeoutError, httpx.TimeoutException):
            _fail(request, f"timed out after {request.timeout:g} s")
        except httpx.RequestError as exc:
            _fail(request, _reason(exc))
        except httpx.InvalidURL as exc:
            _fail(request, f"invalid URL: {exc}")

    async def _exchange(self, request: _Request) -> tuple[httpx.Response, bytes]:
        import httpx

        # Streaming: leaving the block early (cancel, size limit) closes the connection.
        url = httpx.URL(request.url)
        if request.query:
            # Merged, not replaced: httpx's `params=` would drop a query the URL already has.
            url = url.copy_merge_params(request.query)
        async with self.client.stream(
            request.method, url, headers=request.headers, content=request.content,
            timeout=request.timeout, follow_redirects=request.follow_redirects,
        ) as response:
            raw = bytearray()
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > MAX_BODY:
                    _fail(request, f"response body is larger than {MAX_BODY} bytes")
            return response, bytes(raw)


def _parse_config(config: dict[str, Any]) -> _Request:
    url = config.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ExecutionError(f"'url' must be an http:// or https:// URL, got {url!r}")
    method = config.get("method", "GET")
    if method not in METHODS:
        raise ExecutionError(f"'method' must be one of {', '.join(METHODS)}, got {method!r}")
    if "json" in config and "body" in config:
        raise ExecutionError("give either 'json' or 'body', not both")
    headers = _string_map(config, "headers")
    if "json" in config and not any(name.lower() == "content-type" for name in headers):
        headers["content-type"] = "application/json"
    if (parent := traceparent()) and not any(n.lower() == "traceparent" for n in headers):
        headers["traceparent"] = parent  # tracing on (docs/operations.md "Traces")
    return _Request(
        method=method, url=url, headers=headers, query=_query(config),
        content=_content(config), timeout=_timeout(config),
        expect=_expect(config.get("expect_status")),
        follow_redirects=bool(config.get("follow_redirects", False)),
    )


def _string_map(config: dict[str, Any], key: str) -> dict[str, str]:
    value = config.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ExecutionError(f"'{key}' must be an object of strings, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _query(config: dict[str, Any]) -> dict[str, Any]:
    query = config.get("query") or {}
    if not isinstance(query, dict):
        raise ExecutionError(f"'query' must be an object, got {query!r}")
    return dict(query)


def _content(config: dict[str, Any]) -> bytes | None:
    if "body" in config:
        body = config["body"]
        if not isinstance(body, str):
            raise ExecutionError(f"'body' must be a string, got {type(body).__name__}; "
                                 "use 'json' to send structured data")
        return body.encode()
    if "json" not in config:
        return None
    try:
        return json.dumps(config["json"], allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ExecutionError(f"'json' is not JSON-serialisable: {exc}") from exc


def _timeout(config: dict[str, Any]) -> float:
    timeout = config.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ExecutionError(f"'timeout' must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _expect(value: Any) -> frozenset[int] | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ExecutionError(f"'expect_status' must be an integer or a list of integers, "
                             f"got {value!r}")
    return frozenset(values)


def _parse_body(response: httpx.Response, raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode(response.encoding or "utf-8", "replace")
    try:
        return loads_strict(text)
    except ValueError:
        return text


def _check_status(request: _Request, response: httpx.Response, body: Any) -> None:
    status = response.status_code
    ok = 200 <= status < 300 if request.expect is None else status in request.expect
    if ok:
        return
    wanted = "2xx" if request.expect is None else ", ".join(map(str, sorted(request.expect)))
    excerpt = _excerpt(body)
    location = response.headers.get("location")
    where = f" (location: {location})" if location and 300 <= status < 400 else ""
    _fail(request, f"unexpected status {status} {response.reason_phrase}{where}, "
                   f"expected {wanted}" + (f": {excerpt}" if excerpt else ""))


def _excerpt(body: Any) -> str:
    if body is None:
        return ""
    text = body if isinstance(body, str) else json.dumps(body)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def _reason(exc: httpx.RequestError) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectError):
        kind = "cannot connect"
    elif isinstance(exc, httpx.TooManyRedirects):
        kind = "too many redirects"
    else:
        kind = type(exc).__name__
    detail = str(exc)
    return f"{kind}: {detail}" if detail else kind


def _display_url(url: str) -> str:
    """The URL without credentials, for logs and messages."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url
    if not parsed.userinfo:
        return url
    return str(parsed.copy_with(username=None, password=None))


def _fail(request: _Request, reason: str) -> NoReturn:
    raise ExecutionError(f"{request.label} failed: {reason}")


@hookimpl
def register_executors() -> list[type]:
    return [HttpExecutor]
