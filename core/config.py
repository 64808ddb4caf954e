"""The configuration file, `baseshift.toml`: settings a team keeps in its repository.

Precedence, lowest first: defaults, the file, BASESHIFT_* environment variables, flags.
The file is `BASESHIFT_CONFIG` when set, else `./baseshift.toml` when present:

    [baseshift]
    data_dir = ".baseshift"          # relative paths are relative to this file
    store = "sqlite"
    workflows_dir = "workflows"

    [plugins.trigger_cron]           # -> Settings.extra["trigger_cron"]
    recheck = 30
"""
from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .errors import ConfigError

FILE_NAME = "baseshift.toml"


def config_path(env: Mapping[str, str]) -> Path | None:
    """The configuration file to read, or None when there is none."""
    named = env.get("BASESHIFT_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"BASESHIFT_CONFIG names {named!r}, which is not a file")
        return path
    local = Path(FILE_NAME)
    return local if local.is_file() else None


def read_config(path: Path) -> dict[str, Any]:
    """Settings values from the file (`extra` holds the `[plugins.*]` tables).

    Raises ConfigError naming the file, the key and what was expected."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", hint="see docs/configuration.md") from None
    _only(path, "", data, {"baseshift", "plugins"})
    section = data.get("baseshift", {})
    _table(path, "baseshift", section)
    _only(path, "baseshift.", section, set(_KEYS))
    values = {key: _KEYS[key](path, key, value) for key, value in section.items()}
    plugins = data.get("plugins", {})
    _table(path, "plugins", plugins)
    for name, table in plugins.items():
        _table(path, f"plugins.{name}", table)
    if plugins:
        values["extra"] = {name: dict(table) for name, table in plugins.items()}
    return values


def _only(path: Path, prefix: str, table: Mapping[str, Any], known: set[str]) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else \
                f"known keys: {', '.join(prefix + k for k in sorted(known))}"
            raise ConfigError(f"{path}: unknown key '{prefix}{key}'", hint=hint)


def _table(path: Path, key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{key}' must be a table ([{key}]), got {value!r}")


def _path(path: Path, key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise _expected(path, key, value, "a path (a non-empty string)")
    return path.parent / value


def _name(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _expected(path, key, value, "a backend name such as \"sqlite\"")
    return value


def _url(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise _expected(path, key, value, "a URL such as \"scheme://host:port/...\"")
    return value


def _positive(path: Path, key: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise _expected(path, key, value, "a positive integer")
    return value


def _flag(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _expected(path, key, value, "true or false")
    return value


def _names(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _expected(path, key, value, "a list of plugin names")
    return tuple(value)


def _expected(path: Path, key: str, value: Any, what: str) -> ConfigError:
    return ConfigError(f"{path}: 'baseshift.{key}' has value {value!r}. Expected {what}.")


_KEYS: dict[str, Callable[[Path, str, Any], Any]] = {
    "data_dir": _path, "workflows_dir": _path, "store": _name, "templates": _name,
    "queue": _name, "cache": _name, "live": _name, "results": _name,
    "database_url": _url, "redis_url": _url, "mongo_url": _url,
    "max_parallel": _positive, "load_entrypoints": _flag, "disabled_plugins": _names,
    "auth": _name, "allowed_hosts": _names, "mask_secrets": _flag, "tune_gc": _flag,
}

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api_?key|private", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def masked(value: Any, key: str = "") -> Any:
    """`value` for display: secret-looking keys and passwords inside URLs become ***."""
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, key) for v in value]
    if _SECRET_KEY.search(key) and value not in (None, ""):
        return "***"
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value)
    if isinstance(value, Path):
        return str(value)
    return value


T = TypeVar("T", int, float, str)


class WithPluginOptions(Protocol):
    """What `option` reads: `Settings`, whose `extra` holds the `[plugins.*]` tables."""

    @property
    def extra(self) -> Mapping[str, Any]: ...


def option(settings: WithPluginOptions, table: str, key: str, default: T) -> T:
    """`[plugins.TABLE] KEY` from the configuration, of the default's type (numbers
    positive), or ConfigError naming the key: a typo in a cache size must not pass."""
    options = settings.extra.get(table) or {}
    if key not in options:
        return default
    value = options[key]
    kind = type(default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Config 'plugins.{table}.{key}' has value {value!r}. "
                              "Expected true or false.")
        return value
    ok = isinstance(value, str) if kind is str else (
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        and (kind is float or isinstance(value, int)))
    if not ok:
        number = "integer" if kind is int else "number"
        wanted = "a string" if kind is str else f"a positive {number}"
        raise ConfigError(f"Config 'plugins.{table}.{key}' has value {value!r}. Expected {wanted}.")
    return kind(value)
