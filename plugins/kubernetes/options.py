"""The `kubernetes` executor's settings: the `[plugins.executor_kubernetes]` table, checked
when the application starts so a mistake stops it with one message naming the key."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from baseshift.core.errors import ConfigError, ExecutionError
from baseshift.core.settings import Settings

from .pods import PodDefaults, check_dns_label, check_labels

TABLE = "executor_kubernetes"
"""`Settings.extra[TABLE]`, the `[plugins.executor_kubernetes]` table of baseshift.toml."""

KEYS = ("namespace", "kubeconfig", "context", "service_account", "labels", "watch_seconds",
        "api")


@dataclass(frozen=True, slots=True)
class KubeOptions:
    """Where pods go and how to reach the cluster.

    `api` replaces the client built from the kubeconfig with any CoreV1Api-like object
    (tests use a fake; a company may pass one with its own authentication)."""

    defaults: PodDefaults = PodDefaults()
    kubeconfig: str | None = None
    context: str | None = None
    watch_seconds: int = 60
    api: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KubeOptions:
        table = settings.extra.get(TABLE) or {}
        if not isinstance(table, dict):
            raise ConfigError(f"[plugins.{TABLE}] must be a table, got {table!r}")
        for key in table:
            if key not in KEYS:
                close = difflib.get_close_matches(key, KEYS, n=1)
                raise ConfigError(f"[plugins.{TABLE}] has an unknown key '{key}'",
                                  hint=f"did you mean '{close[0]}'?" if close
                                  else f"known keys: {', '.join(KEYS)}")
        try:
            return cls._parse(table)
        except ExecutionError as exc:
            raise ConfigError(f"[plugins.{TABLE}] {exc.message}") from None

    @classmethod
    def _parse(cls, table: dict[str, Any]) -> KubeOptions:
        account = table.get("service_account")
        defaults = PodDefaults(
            namespace=check_dns_label("namespace", table.get("namespace", "default")),
            labels=check_labels("labels", table.get("labels")),
            service_account=None if account is None else check_dns_label("service_account",
                                                                          account),
        )
        seconds = table.get("watch_seconds", 60)
        if type(seconds) is not int or seconds < 1:
            raise ExecutionError(f"'watch_seconds' must be a positive integer, got {seconds!r}")
        api = table.get("api")
        if api is not None and not hasattr(api, "create_namespaced_pod"):
            # only Python code can pass a client; from baseshift.toml it is a mistake
            raise ExecutionError(f"'api' must be a CoreV1Api-like client object, got {api!r}")
        return cls(defaults=defaults, kubeconfig=_text(table, "kubeconfig"),
                   context=_text(table, "context"), watch_seconds=seconds, api=api)


def _text(table: dict[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ExecutionError(f"'{key}' must be a non-empty string, got {value!r}")
    return value
