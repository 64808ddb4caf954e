"""`[plugins.loadbalancer]`: where NGINX and its generated configuration live, and the strict
validation of everything this plugin writes into that configuration (a server address from an
API call, the listen address and paths from the configuration file).

Jinja's autoescape knows HTML, not NGINX syntax: a `;`, `{` or newline in a value would end
the directive and start another. So no value reaches the template without passing one of the
patterns below, and the template quotes nothing."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baseshift.core.config import WithPluginOptions, option
from baseshift.core.errors import ConfigError, InputError

OPTIONS = "loadbalancer"
"""The options table: `[plugins.loadbalancer]`."""
DEFAULT_INTERVAL = 10.0
"""Seconds between two health checks of the registered servers."""
MAX_WEIGHT = 1000

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)
_PATH = re.compile(r"/[A-Za-z0-9_./+-]*", re.ASCII)
"""An absolute path of plain characters: no space, quote, `;`, `{`, `}`, `$` or newline."""


def _port(text: str, what: str) -> int:
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise InputError(f"{what} must end in a port from 1 to 65535", details={"field": what})
    return int(text)


def parse_address(value: Any, what: str = "address") -> str:
    """`value` as `host:port` (an IPv4 address, `[IPv6]` or a hostname, then a port), in its
    normal form (a hostname in lower case, an IP as `ipaddress` writes it), or InputError.
    Only these characters reach the NGINX configuration."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string 'host:port'", details={"field": what})
    if len(value) > 300 or not value.isascii() or not value.isprintable():
        raise InputError(f"{what} must be 'host:port' in plain ASCII", details={"field": what})
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise InputError(f"{what} must be 'host:port', got {value!r}", details={"field": what})
    port = _port(port_text, what)
    if host.startswith("[") and host.endswith("]"):
        try:
            ip6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InputError(f"{what}: {host!r} is not an IPv6 address",
                             details={"field": what}) from None
        if ip6.scope_id:
            raise InputError(f"{what}: a scoped IPv6 address is not accepted",
                             details={"field": what})
        return f"[{ip6.compressed}]:{port}"
    try:
        return f"{ipaddress.IPv4Address(host)}:{port}"
    except ValueError:
        pass
    name = host.lower()
    if len(name) > 253 or not _HOSTNAME.fullmatch(name) or name.replace(".", "").isdigit():
        raise InputError(f"{what}: {host!r} is not a hostname or IP address",
                         details={"field": what})
    return f"{name}:{port}"


def parse_listen(value: str) -> str:
    """The `listen` option: `host:port` as for a server, or a bare port."""
    if _PORT.fullmatch(value):
        return str(_port(value, "listen"))
    return parse_address(value, "listen")


@dataclass(frozen=True, slots=True)
class LbOptions:
    """The checked options; every path absolute and plain (see `_PATH`)."""

    nginx: str
    config: Path
    prefix: Path
    pid: Path
    error_log: Path
    access_log: Path
    upstream: str
    listen: str
    tls_cert: Path | None
    tls_key: Path | None
    interval: float

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def configured(settings: WithPluginOptions) -> bool:
    """Whether `[plugins.loadbalancer]` is in the configuration (the plugin is idle without)."""
    return bool(settings.extra.get(OPTIONS))


def _path(settings: WithPluginOptions, key: str, default: Path | None) -> Path | None:
    text = option(settings, OPTIONS, key, "")
    if not text:
        return default
    path = Path(text)
    if not path.is_absolute():
        path = Path(getattr(settings, "data_dir", Path.cwd())).absolute() / path
    if not _PATH.fullmatch(str(path)):
        raise ConfigError(f"Config 'plugins.{OPTIONS}.{key}' has value {text!r}. Expected a "
                          "path of letters, digits and _ . / + - only (it is written into "
                          "the NGINX configuration).")
    return path


def options_of(settings: WithPluginOptions) -> LbOptions:
    """The options of `[plugins.loadbalancer]`, or ConfigError naming the bad one."""
    data_dir = Path(getattr(settings, "data_dir", Path.cwd())).absolute()
    prefix = _path(settings, "prefix", data_dir / "nginx")
    assert prefix is not None
    config = _path(settings, "config", prefix / "nginx.conf")
    pid = _path(settings, "pid", prefix / "nginx.pid")
    error_log = _path(settings, "error_log", prefix / "error.log")
    access_log = _path(settings, "access_log", prefix / "access.log")
    assert config is not None and pid is not None
    assert error_log is not None and access_log is not None
    cert = _path(settings, "tls_cert", None)
    key = _path(settings, "tls_key", None)
    if (cert is None) != (key is None):
        raise ConfigError(f"Config 'plugins.{OPTIONS}' needs both tls_cert and tls_key, or "
                          "neither.")
    upstream = option(settings, OPTIONS, "upstream", "baseshift")
    if not _NAME.fullmatch(upstream):
        raise ConfigError(f"Config 'plugins.{OPTIONS}.upstream' has value {upstream!r}. "
                          "Expected letters, digits and _.")
    listen_text = option(settings, OPTIONS, "listen", "127.0.0.1:8080")
    try:
        listen = parse_listen(listen_text)
    except InputError as exc:
        raise ConfigError(f"Config 'plugins.{OPTIONS}.listen': {exc.message}") from None
    return LbOptions(nginx=option(settings, OPTIONS, "nginx", "nginx"), config=config,
                     prefix=prefix, pid=pid, error_log=error_log, access_log=access_log,
                     upstream=upstream, listen=listen, tls_cert=cert, tls_key=key,
                     interval=float(option(settings, OPTIONS, "health_interval",
                                           DEFAULT_INTERVAL)))


def parse_weight(value: Any) -> int:
    """A server's weight: an integer from 1 to MAX_WEIGHT (1 when absent)."""
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_WEIGHT:
        raise InputError(f"weight must be an integer from 1 to {MAX_WEIGHT}",
                         details={"field": "weight"})
    return value
