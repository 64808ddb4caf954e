"""Settings: where state lives and which backends to use, from flags, then env, then defaults."""
from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import config_path, read_config
from .errors import ConfigError

DEFAULT_DATA_DIR = ".baseshift"

log = logging.getLogger("baseshift.settings")


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective configuration of one BaseShift application: command-line flags, then
    BASESHIFT_* variables, then the configuration file (`baseshift.toml`, core/config.py),
    then these defaults (`from_env` merges them in that order).

    Attributes:
        data_dir: folder for the SQLite database and job working files
            (`--data-dir`, `BASESHIFT_DATA_DIR`, default `./.baseshift`).
        store: name of the state-store backend (`--store`, `BASESHIFT_STORE`: `sqlite`,
            `memory` or `postgres`).
        max_parallel: global limit of attempts running at once (`BASESHIFT_MAX_PARALLEL`,
            default 64).
        load_entrypoints: load pip-installed plugins from the `baseshift` entry-point group.
        disabled_plugins: plugin names not to register (`BASESHIFT_DISABLE_PLUGINS=a,b`).
        workflows_dir: the folder of `.bsw` files the server loads (`--workflows`,
            `BASESHIFT_WORKFLOWS`, default `./workflows`).
        templates: name of the job-template store backend (`BASESHIFT_TEMPLATES`:
            `sqlite`, `memory`, `postgres` or `mongo`).
        queue: where job attempts execute (`BASESHIFT_QUEUE`): `local` runs them in the
            process that schedules them; `postgres` hands them to `baseshift worker`s.
        cache: name of the cache backend (`BASESHIFT_CACHE`: `memory` or `redis`).
        live: how live job status reaches other processes (`BASESHIFT_LIVE`: `local`
            keeps it in this process; `redis` publishes it for every API server).
        results: where job results are also kept as documents (`BASESHIFT_RESULTS`:
            `none` or `mongo`).
        database_url: the PostgreSQL server (`BASESHIFT_DATABASE_URL`), e.g.
            `postgresql://user@127.0.0.1:5432/baseshift?schema=prod`.
        redis_url: the Redis server (`BASESHIFT_REDIS_URL`), e.g. `redis://127.0.0.1:6379/0`.
        mongo_url: the MongoDB server (`BASESHIFT_MONGO_URL`).
        auth: `on` (the default: every request needs a permission, core/access.py) or
            `none` (`--auth none`, `BASESHIFT_AUTH`): everyone may do everything, which
            `serve` accepts only on a loopback address, with a warning on every start.
        allowed_hosts: the names clients may reach the server by (the `Host` header;
            `BASESHIFT_ALLOWED_HOSTS=a.example,b.example`); any other, or no Host, gets 400
            before routing, which stops DNS-rebinding pages. An entry is an exact name or
            IP address (`ci.example.com`, `10.0.0.5`, `[::1]`), or a domain with a leading
            dot (`.example.com`: that name and every name under it); ports are ignored.
            The loopback names (`localhost`, `127.0.0.1`, `[::1]`) are always allowed, so
            empty means loopback only. Behind a reverse proxy, pass the original Host
            through (X-Forwarded-Host is not trusted).
        mask_secrets: replace every secret value (and its encodings) by `***` in what a job
            leaves behind, its log, output and error (core/masking.py; `mask_secrets` in
            the file, default true). DANGEROUS when false: secrets a step prints are stored
            and shown in clear; for debugging a throwaway installation only. The compliance
            report shows it.
        tune_gc: once started, freeze the objects that exist and collect garbage less
            often (core/app/heap.py: up to a sixth of a large fan-out's CPU time went to
            the collector). Once per process; false leaves the collector as it was (an
            application embedding Base Shift that tunes it itself).
        extra: the file's `[plugins.NAME]` tables, keyed by NAME (read with
            `config.option`), and values a command sets for a plugin (`progress`).
    """

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    store: str = "sqlite"
    max_parallel: int = 64
    load_entrypoints: bool = True
    disabled_plugins: tuple[str, ...] = ()
    workflows_dir: Path = Path("workflows")
    templates: str = "sqlite"
    queue: str = "local"
    cache: str = "memory"
    live: str = "local"
    results: str = "none"
    database_url: str | None = None
    redis_url: str | None = None
    mongo_url: str | None = None
    auth: str = "on"
    allowed_hosts: tuple[str, ...] = ()
    mask_secrets: bool = True
    tune_gc: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.auth not in ("on", "none"):
            raise ConfigError(f"Config 'auth' has value {self.auth!r}. Expected 'on' or "
                              "'none'.", hint="authentication is on unless you say none")
        for name in ("data_dir", "workflows_dir"):
            if not isinstance(getattr(self, name), Path):
                object.__setattr__(self, name, Path(getattr(self, name)))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, overridden by the configuration file (`baseshift.toml`, see
        core/config.py), by BASESHIFT_* variables, then by explicit arguments."""
        env = dict(os.environ if env is None else env)
        _warn_misspelt(env)
        path = config_path(env)
        base = replace(cls(), **read_config(path)) if path is not None else cls()
        values: dict[str, Any] = {}
        if "BASESHIFT_DATA_DIR" in env:
            values["data_dir"] = Path(env["BASESHIFT_DATA_DIR"])
        if "BASESHIFT_STORE" in env:
            values["store"] = env["BASESHIFT_STORE"]
        if "BASESHIFT_WORKFLOWS" in env:
            values["workflows_dir"] = Path(env["BASESHIFT_WORKFLOWS"])
        for name in _PLAIN_VARS:
            if f"BASESHIFT_{name.upper()}" in env:
                values[name] = env[f"BASESHIFT_{name.upper()}"]
        if "BASESHIFT_MAX_PARALLEL" in env:
            values["max_parallel"] = _positive_int("BASESHIFT_MAX_PARALLEL",
                                                   env["BASESHIFT_MAX_PARALLEL"])
        if env.get("BASESHIFT_ALLOWED_HOSTS"):
            values["allowed_hosts"] = _names(env["BASESHIFT_ALLOWED_HOSTS"])
        if env.get("BASESHIFT_DISABLE_PLUGINS"):
            values["disabled_plugins"] = _names(env["BASESHIFT_DISABLE_PLUGINS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "extra" in values:  # the file's plugin tables stay unless named again
            values["extra"] = {**base.extra, **values["extra"]}
        return replace(base, **values)


_PLAIN_VARS = ("templates", "queue", "cache", "live", "results", "database_url", "redis_url",
               "mongo_url", "auth")
"""Settings read verbatim from `BASESHIFT_<NAME>`."""


_OTHER_VARS = ("BASESHIFT_DATA_DIR", "BASESHIFT_STORE", "BASESHIFT_WORKFLOWS",
               "BASESHIFT_MAX_PARALLEL", "BASESHIFT_DISABLE_PLUGINS", "BASESHIFT_CONFIG",
               "BASESHIFT_ALLOWED_HOSTS", "BASESHIFT_LOG_FORMAT",
               "BASESHIFT_RUN_ID", "BASESHIFT_JOB", "BASESHIFT_ATTEMPT")
"""The other variables Base Shift reads or sets (the last three: for a step's process)."""

KNOWN_VARS = frozenset((*_OTHER_VARS, *(f"BASESHIFT_{n.upper()}" for n in _PLAIN_VARS)))


_warned: set[str] = set()


def _warn_misspelt(env: dict[str, str]) -> None:
    """Warn about a BASESHIFT_ variable that is not a setting but nearly spells one: it is
    most likely a typo that would otherwise be ignored without a word. Variables of other
    names (a plugin's own, `BASESHIFT_SECRET_*`) pass silently."""
    for name in env:
        if not name.startswith("BASESHIFT_") or name in KNOWN_VARS or name in _warned:
            continue
        close = difflib.get_close_matches(name, KNOWN_VARS, n=1, cutoff=0.85)
        if close:
            _warned.add(name)
            log.warning("environment variable %s is not a setting and is ignored; "
                        "did you mean %s?", name, close[0])


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _positive_int(key: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"Config '{key}' has value {text!r}. Expected a positive integer.")
    return value
