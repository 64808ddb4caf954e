"""An HTTP client of one Base Shift server for the command line: the stored bearer token
on every request, a session renewed when its access token expires, and the server's
problem documents (RFC 7807) turned into the command line's errors."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from baseshift.core.errors import (
    BadRequest,
    BaseShiftError,
    Conflict,
    Forbidden,
    InputError,
    NotFound,
    StoreError,
    Unauthorized,
)

from .credentials import SESSION, CredentialFile, Login

RENEW_BEFORE = 30.0
"""Seconds before its stated expiry that an access token is renewed rather than sent."""
TIMEOUT = httpx.Timeout(30.0)
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)
"""An event stream sends a keep-alive every 15 s; a minute of silence is a lost connection."""

ERRORS: dict[int, type[BaseShiftError]] = {400: BadRequest, 401: Unauthorized, 403: Forbidden,
                                           404: NotFound, 409: Conflict, 422: InputError}


class Unreachable(BaseShiftError):
    """The server did not answer: refused, unknown name, TLS failure, time-out."""

    code = "client.unreachable"
    status = 503


def transport_error(url: str, exc: httpx.TransportError, ca_file: str | None) -> Unreachable:
    """A clear sentence for what failed before any answer."""
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return Unreachable(f"the certificate of {url} is not trusted ({_ssl_reason(text)})",
                           hint="for a server whose certificate a private authority signed, "
                           "give that authority's certificate with --ca-file PEM"
                           if ca_file is None else f"is {ca_file} the authority that signed it?")
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(f"{url} did not answer in time", hint="is the address right?")
    if "refused" in text.lower():
        return Unreachable(f"cannot reach {url}: connection refused",
                           hint="is the server running, and is the address and port right?")
    return Unreachable(f"cannot reach {url}: {text}", hint="check the address")


def _ssl_reason(text: str) -> str:
    _, _, reason = text.partition("certificate verify failed:")
    return reason.split("(_ssl")[0].strip(" )") or "verification failed"


def problem_error(response: httpx.Response, url: str, *,
                  signing_in: bool = False) -> BaseShiftError:
    """The error an answer of 400 or more stands for, with the server's detail and hint
    (a 401 while `signing_in` is the refused sign-in itself, with the server's words)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    hint = body.get("hint") if isinstance(body.get("hint"), str) else None
    status = response.status_code
    details = {k: v for k, v in body.items() if k in ("code", "field", "errors")}
    message = detail or f"{url} answered {status} {response.reason_phrase}"
    if status == 401 and signing_in:
        return Unauthorized(message, hint=hint, details=details)
    if status == 401:
        return Unauthorized(f"{url} refused the stored credentials: {message}",
                            hint=f"run `baseshift login {url}`", details=details)
    if status == 403:
        return Forbidden(f"refused by {url}: {message}",
                         hint=hint or "ask an administrator for a role that grants it",
                         details=details)
    if status == 429:
        return BaseShiftError(message, hint=hint, details=details)
    cls = ERRORS.get(status) or (StoreError if status >= 500 else BadRequest)
    return cls(message, hint=hint, details=details)


class Remote:
    """Requests to one server with the stored login of that server (renewed, and stored
    again, when it is a session whose access token expired)."""

    def __init__(self, url: str, login: Login | None, file: CredentialFile, *,
                 ca_file: str | None = None) -> None:
        self.url = url
        self.login = login
        self.file = file
        self.ca_file = ca_file or (login.ca_file if login else None)
        self.signing_in = False
        """Set by `baseshift login`: a 401 is the refused sign-in, not a lost session."""
        self.client = httpx.Client(base_url=url, timeout=TIMEOUT, verify=self._verify(),
                                   follow_redirects=False, trust_env=True)

    def _verify(self) -> Any:
        if self.ca_file is None:
            return True
        import ssl

        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise InputError(f"cannot use --ca-file {self.ca_file}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def call(self, method: str, path: str, *, body: Any = None,
             params: Any = None) -> httpx.Response:
        """One request with the bearer; a session renewed once on 401; an error for any
        answer of 400 or more."""
        response = self._send(method, path, body, params, self._bearer())
        if response.status_code == 401 and self._renewable():
            response = self._send(method, path, body, params, self._renew())
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> BaseShiftError:
        if response.status_code == 401 and self.login is None:
            return Unauthorized(f"not signed in to {self.url}",
                                hint=f"run `baseshift login {self.url}`")
        return problem_error(response, self.url, signing_in=self.signing_in)

    def json(self, method: str, path: str, *, body: Any = None, params: Any = None) -> Any:
        response = self.call(method, path, body=body, params=params)
        return response.json() if response.content else None

    def anonymous(self, method: str, path: str, body: Any) -> httpx.Response:
        """A request without credentials (signing in); the caller reads the answer."""
        return self._send(method, path, body, None, None)

    def _send(self, method: str, path: str, body: Any, params: Any,
              token: str | None) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self.client.request(method, path, json=body, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc, self.ca_file) from None

    @contextmanager
    def events(self, path: str) -> Iterator[Iterator[tuple[str, Any]]]:
        """A server-sent event stream, as (event, JSON data) pairs."""
        headers = {"Accept": "text/event-stream"}
        token = self._bearer()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with self.client.stream("GET", path, headers=headers,
                                    timeout=STREAM_TIMEOUT) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield _messages(response.iter_lines())
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc, self.ca_file) from None

    def _bearer(self) -> str | None:
        """The access token to send (renewed first when it expires now); None when not
        signed in: a server run with `--auth none` needs none."""
        if self.login is None:
            return None
        expires = self.login.expires_at
        if self._renewable() and expires is not None and expires - RENEW_BEFORE <= time.time():
            return self._renew()
        return self.login.access_token

    def _renewable(self) -> bool:
        return self.login is not None and self.login.kind == SESSION \
            and self.login.refresh_token is not None

    def _renew(self) -> str:
        """A new access token for the session, and the rotated refresh token stored, under
        the credentials file's lock; when another command renewed it meanwhile, its tokens
        are used instead of spending the refresh token twice."""
        assert self.login is not None
        with self.file.locked():
            stored = self.file.load().servers.get(self.url)
            if stored is None:
                raise Unauthorized(f"not signed in to {self.url} any more",
                                   hint=f"run `baseshift login {self.url}`")
            if stored.access_token != self.login.access_token:
                self.login = stored
                return stored.access_token
            response = self._send("POST", "/api/v1/auth/refresh",
                                  {"refresh_token": self.login.refresh_token}, None, None)
            if response.status_code >= 400:
                raise _expired(problem_error(response, self.url, signing_in=True), self.url)
            pair = response.json()
            self.login = self.login.renewed(pair["access_token"], pair["refresh_token"],
                                            time.time() + float(pair["expires_in"]))
            credentials = self.file.load()
            self.file.save(credentials.with_login(self.url, self.login, default=False))
        return self.login.access_token


def _expired(error: BaseShiftError, url: str) -> BaseShiftError:
    if isinstance(error, Unauthorized):
        return Unauthorized(f"the session on {url} has ended: {error.message}",
                            hint=f"run `baseshift login {url}`")
    return error


def _messages(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event, data) for each message of a `text/event-stream` body; comments skipped."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, json.loads("\n".join(data))
