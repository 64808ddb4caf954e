"""`[plugins.elasticsearch]`, read and checked at `configure`: a wrong value fails the start
with a ConfigError naming the key, never a warning at the first shipped line.

Secret values (`api_key`, `password`) may be `${secret.NAME}` references, resolved through the
`resolve_secret` hook when the shipper starts (`resolve_auth`); they are kept out of `repr`.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from baseshift.core.config import WithPluginOptions, option
from baseshift.core.errors import ConfigError

OPTIONS = "elasticsearch"
"""`[plugins.elasticsearch]`."""
KEYS = frozenset({"url", "index", "api_key", "username", "password", "ca_file", "verify",
                  "batch", "interval", "max_buffer", "timeout", "retries", "backoff",
                  "shutdown_timeout"})
DEFAULT_INDEX = "baseshift-logs-{date}"
DATE = "{date}"
DATE_FORMAT = "%Y.%m.%d"
"""`{date}` in an index name: the UTC day of the line, as Logstash and Beats name indices."""
SECRET_REF = re.compile(r"\$\{secret\.([A-Za-z_][A-Za-z0-9_]*)\}")
INDEX_FORBIDDEN = set('\\/*?"<>| ,#:')
MAX_INDEX_BYTES = 255

Resolve = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class ElasticConfig:
    """Where and how to ship: the checked options."""

    nodes: tuple[str, ...]
    index: str = DEFAULT_INDEX
    api_key: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    verify: bool = True
    batch: int = 500
    interval: float = 1.0
    max_buffer: int = 10_000
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    """The wait before the first retry, doubled for each next one (with jitter)."""
    shutdown_timeout: float = 10.0


def read_config(settings: WithPluginOptions) -> ElasticConfig | None:
    """The options, or None when the table is absent or empty (the plugin stays off)."""
    table: Mapping[str, Any] = settings.extra.get(OPTIONS) or {}
    if not table:
        return None
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(f"Config 'plugins.{OPTIONS}' has unknown key(s) {', '.join(unknown)}. "
                          f"Expected some of {', '.join(sorted(KEYS))}.")
    d = ElasticConfig(nodes=())

    def get(key: str, default: Any) -> Any:
        return option(settings, OPTIONS, key, default)

    config = ElasticConfig(
        nodes=_nodes(table.get("url")), index=check_index(get("index", d.index)),
        api_key=get("api_key", ""), username=get("username", ""),
        password=get("password", ""), ca_file=get("ca_file", ""), verify=get("verify", True),
        batch=get("batch", d.batch), interval=get("interval", d.interval),
        max_buffer=get("max_buffer", d.max_buffer), timeout=get("timeout", d.timeout),
        retries=_retries(table.get("retries", d.retries)), backoff=get("backoff", d.backoff),
        shutdown_timeout=get("shutdown_timeout", d.shutdown_timeout))
    _check_auth(config)
    if config.ca_file and not Path(config.ca_file).is_file():
        raise ConfigError(f"Config 'plugins.{OPTIONS}.ca_file' names {config.ca_file!r}, "
                          "which is not a file", hint="the PEM file of the CA that signed "
                          "the nodes' certificates")
    return config


def _retries(value: object) -> int:
    """0 is a valid count here (no retry), which `option` refuses."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"Config 'plugins.{OPTIONS}.retries' has value {value!r}. "
                          "Expected an integer, 0 or more.")
    return value


def _nodes(value: object) -> tuple[str, ...]:
    urls = [value] if isinstance(value, str) else value
    if not urls or not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"Config 'plugins.{OPTIONS}.url' has value {value!r}. Expected the "
                          "http(s):// URL of a node, or a list of them.",
                          hint='e.g. url = ["https://es1:9200", "https://es2:9200"]')
    return tuple(_node(u) for u in urls)


def _node(url: str) -> str:
    try:
        split = urlsplit(url)
        split.port  # noqa: B018 — a port that is not a number raises here
    except ValueError:
        split = None
    if split is None or split.scheme not in ("http", "https") or not split.hostname \
            or split.query or split.fragment:
        raise ConfigError(f"Config 'plugins.{OPTIONS}.url' has {url!r}, which is not the "
                          "http(s):// URL of a node", hint='e.g. "https://es1:9200"')
    if split.username is not None or split.password is not None:
        raise ConfigError(f"Config 'plugins.{OPTIONS}.url' must not carry credentials",
                          hint="set api_key, or username and password (a URL gets logged)")
    return url.rstrip("/")


def check_index(index: str) -> str:
    """`index` if it names a valid index or data stream once `{date}` is filled in
    (Elasticsearch's rules: lower case; none of \\ / * ? " < > | , # : or a space; not
    starting with - _ +; not . or ..; at most 255 bytes), else a ConfigError."""
    sample = index.replace(DATE, "2026.12.31")
    problem = (
        "is empty" if not sample else
        "must be lower case" if sample != sample.lower() else
        "has a brace other than {date}" if "{" in sample or "}" in sample else
        f"has {''.join(sorted(set(sample) & INDEX_FORBIDDEN))!r}, which an index name cannot "
        "have" if set(sample) & INDEX_FORBIDDEN else
        "cannot start with -, _ or +" if sample[0] in "-_+" else
        "cannot be . or .." if sample in (".", "..") else
        f"is longer than {MAX_INDEX_BYTES} bytes" if len(sample.encode()) > MAX_INDEX_BYTES
        else "")
    if problem:
        raise ConfigError(f"Config 'plugins.{OPTIONS}.index' has value {index!r}, which "
                          f"{problem}", hint=f'e.g. index = "{DEFAULT_INDEX}", or the name '
                          "of a data stream")
    return index


def _check_auth(config: ElasticConfig) -> None:
    if config.api_key and (config.username or config.password):
        raise ConfigError(f"Config 'plugins.{OPTIONS}' sets api_key and username/password",
                          hint="choose one way to sign in")
    if bool(config.username) != bool(config.password):
        raise ConfigError(f"Config 'plugins.{OPTIONS}' needs both username and password")


@dataclass(frozen=True, slots=True)
class Auth:
    """The resolved sign-in: the value of the Authorization header, or none."""

    header: str = field(default="", repr=False)


async def resolve_auth(config: ElasticConfig, resolve: Resolve) -> Auth:
    """The Authorization header, with `${secret.NAME}` values read through `resolve`."""
    import base64

    if config.api_key:
        return Auth(f"ApiKey {await _secret('api_key', config.api_key, resolve)}")
    if config.username:
        password = await _secret("password", config.password, resolve)
        pair = f"{await _secret('username', config.username, resolve)}:{password}"
        return Auth(f"Basic {base64.b64encode(pair.encode()).decode()}")
    return Auth()


async def _secret(key: str, value: str, resolve: Resolve) -> str:
    match = SECRET_REF.fullmatch(value)
    if match is None:
        return value
    found = await resolve(match[1])
    if not found:
        raise ConfigError(f"Config 'plugins.{OPTIONS}.{key}' refers to secret {match[1]!r}, "
                          "which no secret provider knows",
                          hint=f"set BASESHIFT_SECRET_{match[1]}, or store it in the vault")
    return found
