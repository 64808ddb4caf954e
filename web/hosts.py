"""The Host allow-list, checked before routing: a page on an attacker's name that resolves to
this server (DNS rebinding) sends that name in `Host`, so its requests reach nothing."""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from baseshift.core.errors import ConfigError

from .problems import problem

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
"""Always allowed: no attacker's page is served from these names."""

_HOST = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::[0-9]*)?")
_SHOWN = 100
"""Characters of a refused Host header repeated in the answer."""


def host_name(value: str) -> str | None:
    """The name a `Host` header (or an allow-list entry) gives, without its port: lower case,
    no trailing dot, an IPv6 address compressed in brackets (`[::1]`); None if it is none."""
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    name = match["name"].lower()
    if name.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
        except ValueError:
            return None
    return name.removesuffix(".") or None


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """The names a server answers to: exact names, and domains (`.example.com`: the name
    itself and every name under it). Loopback names are always in."""

    names: frozenset[str]
    domains: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowedHosts:
        """The allow-list from `Settings.allowed_hosts`; a ConfigError names a bad entry."""
        names, domains = set(LOOPBACK_NAMES), []
        for entry in entries:
            if entry.startswith("."):
                domains.append(_entry(entry[1:], entry, domain=True))
            else:
                names.add(_entry(entry, entry, domain=False))
        return cls(frozenset(names), tuple(domains))

    def allows(self, name: str) -> bool:
        return name in self.names or any(name == d or name.endswith("." + d)
                                         for d in self.domains)


def _entry(text: str, entry: str, *, domain: bool) -> str:
    try:  # a bare IPv6 address, as people write it
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        name = host_name(text)
    if name is None or (domain and name.startswith("[")):
        raise ConfigError(f"Config 'allowed_hosts' has entry {entry!r}. Expected a host name "
                          "(ci.example.com), a domain with a leading dot (.example.com) or "
                          "an IP address.")
    return name


class HostGuard:
    """ASGI middleware: 400 (problem+json) for an http or websocket request whose `Host`
    header is missing, repeated or not allowed, before any route runs. Put it outside every
    other check, so that a refused request touches nothing; parse the allow-list when the
    app is built (Starlette builds middleware on the first request), so a bad entry stops
    the start."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self._refusal(scope)
            if refusal is not None:
                return await _refuse(refusal, scope, receive, send)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> ASGIApp | None:
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"host"]
        if len(values) != 1:
            detail = ("the request has no Host header" if not values
                      else f"the request has {len(values)} Host headers")
            return problem(400, detail, code="request.host",
                           hint="send one Host header naming this server")
        name = host_name(values[0])
        if name is not None and self.allowed.allows(name):
            return None
        shown = values[0][:_SHOWN]
        return problem(400, f"this server does not answer to the Host {shown!r}",
                       code="request.host", hint=_hint(name))


def _hint(name: str | None) -> str:
    if name is None:
        return "the Host header must be a host name or an IP address, with an optional port"
    return (f"if clients reach this server as {name}, add it to allowed_hosts "
            f"(BASESHIFT_ALLOWED_HOSTS={name}, or allowed_hosts in [baseshift] of "
            f"baseshift.toml); {', '.join(LOOPBACK_NAMES)} are always allowed")


async def _refuse(response: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket" and "websocket.http.response" not in (
            scope.get("extensions") or {}):
        # A server without denial responses turns a close before accept into a 403.
        return await WebSocketClose(code=1008)(scope, receive, send)
    await response(scope, receive, send)
