"""How the JobExecutor is protected, for both ends: TLS files, the shared bearer token, and
the rule that keeps a worker off the network until both are configured.

Everything comes from configuration (`[plugins.executor_grpc]`, the `BASESHIFT_GRPC_TOKEN`
variable, the worker's flags), never from a workflow's `with` block: a workflow author must
not be able to turn TLS off or choose which token is sent. The token is never taken from a
command line (`ps` shows those) and never logged; these classes keep it out of their repr.

This module imports no gRPC at the top: the `grpc` executor, which uses it, is a builtin
imported at every start, and `baseshift[grpc]` may not be installed.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from baseshift.core.config import WithPluginOptions, option
from baseshift.core.errors import ConfigError
from baseshift.core.settings import Settings

TABLE = "executor_grpc"
"""`[plugins.executor_grpc]`: the options of both ends (they share the token)."""
TOKEN_ENV = "BASESHIFT_GRPC_TOKEN"
METADATA_KEY = "authorization"
"""The call metadata carrying `Bearer <token>` (gRPC metadata keys are lower case)."""
TOKEN_SOURCES = f"{TOKEN_ENV} or [plugins.{TABLE}] token_file"
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]+")
"""Printable ASCII without spaces: what an HTTP/2 header value carries unchanged."""


def read_token(settings: WithPluginOptions) -> str | None:
    """The shared token: `BASESHIFT_GRPC_TOKEN`, else the file named by `token_file`, else
    None (no token configured). A file that cannot be read, or holds no usable token, is a
    ConfigError naming the file, never showing its content."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    where = TOKEN_ENV
    if not token:
        path = option(settings, TABLE, "token_file", "")
        if not path:
            return None
        token, where = _read(path, "token_file").decode(errors="replace").strip(), path
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ConfigError(f"the gRPC token in {where} is empty or has spaces or characters "
                          "other than printable ASCII",
                          hint="generate one with `python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))'`")
    return token


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """What the `grpc` executor uses on every channel: TLS when `ca_file` is set (that CA
    only) or `tls = true` (the system's trusted CAs), and the token when one is configured."""

    tls: bool = False
    root_certificates: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: WithPluginOptions) -> ClientSecurity:
        ca_file = option(settings, TABLE, "ca_file", "")
        roots = _read(ca_file, "ca_file", marker=b"-----BEGIN CERTIFICATE-----") \
            if ca_file else None
        tls = roots is not None or bool(option(settings, TABLE, "tls", False))
        return cls(tls, roots, read_token(settings))

    def channel(self, target: str, options: tuple[tuple[str, Any], ...]) -> Any:
        """A new `grpc.aio` channel to `target`: secure when TLS is configured."""
        import grpc

        if not self.tls:
            return grpc.aio.insecure_channel(target, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
        return grpc.aio.secure_channel(target, credentials, options=options)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata: the bearer token, when one is configured."""
        return ((METADATA_KEY, f"Bearer {self.token}"),) if self.token else ()


@dataclass(frozen=True, slots=True)
class ServerSecurity:
    """What a worker serves with: TLS when it has a certificate and key, and the token every
    call must carry when one is configured."""

    certificate: bytes | None = field(default=None, repr=False)
    key: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: WithPluginOptions) -> ServerSecurity:
        """From `certfile`, `keyfile` and the token; a missing or unreadable file, or only
        one of the two TLS files, is a ConfigError naming it."""
        certfile = option(settings, TABLE, "certfile", "")
        keyfile = option(settings, TABLE, "keyfile", "")
        if bool(certfile) != bool(keyfile):
            raise ConfigError("TLS needs both a certificate and its key: give --grpc-certfile "
                              "and --grpc-keyfile (or certfile and keyfile in "
                              f"[plugins.{TABLE}])")
        certificate = _read(certfile, "certfile", marker=b"-----BEGIN CERTIFICATE-----") \
            if certfile else None
        key = _read(keyfile, "keyfile", marker=b"PRIVATE KEY-----") if keyfile else None
        return cls(certificate, key, read_token(settings))

    @property
    def tls(self) -> bool:
        return self.certificate is not None and self.key is not None

    def describe(self) -> str:
        """`TLS, token required` and the like, for the worker's start line."""
        return (f"{'TLS' if self.tls else 'plaintext'}, "
                f"{'token required' if self.token else 'no token'}")

    def lacks(self, address: str) -> str | None:
        """What is missing to serve `address` safely (`TLS`, `a token`, `TLS and a
        token`), or None: an address beyond loopback needs both."""
        if is_loopback(address) or (self.tls and self.token):
            return None
        return " and ".join(x for x, ok in (("TLS", self.tls), ("a token", self.token))
                            if not ok)


def with_server_files(settings: Settings, certfile: str | None, keyfile: str | None
                      ) -> Settings:
    """`settings` with the worker's `--grpc-certfile`/`--grpc-keyfile` flags in
    `[plugins.executor_grpc]` (a flag wins over the configuration file)."""
    flags = {k: v for k, v in (("certfile", certfile), ("keyfile", keyfile)) if v}
    if not flags:
        return settings
    table = {**(settings.extra.get(TABLE) or {}), **flags}
    return replace(settings, extra={**settings.extra, TABLE: table})


def is_loopback(address: str) -> bool:
    """Whether a gRPC server address (`HOST:PORT`, `[IPV6]:PORT`, `unix:PATH`) can only be
    reached from this machine. Host names other than `localhost` count as not loopback:
    what they resolve to can change."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.rsplit(":", 1)[0] if ":" in address else address
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(path: str, key: str, *, marker: bytes | None = None) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the gRPC {key} {path}: {exc.strerror or exc}",
                          hint=f"set [plugins.{TABLE}] {key} (or the matching --grpc-* flag) "
                          "to a readable file") from None
    if marker is not None and marker not in data:
        raise ConfigError(f"the gRPC {key} {path} is not a PEM file (no {marker.decode()!r})")
    return data
