"""The `[plugins.keys]` table: which key provider keeps the key-encryption keys, and the
limits of data keys, rotations and key ages.

    [plugins.keys]
    provider = "file"              # or "vault"
    key_file = "/var/lib/baseshift/keys.json"   # default: keys.json in data_dir
    rotation_batch = 100           # data keys re-wrapped per batch ($BASESHIFT_KEYS_ROTATION_BATCH)
    kek_max_age_days = 365         # the compliance control keys.kek-age

    [plugins.keys.vault]           # provider = "vault" (the `vault` extra)
    address = "https://vault.example.com:8200"   # default: $VAULT_ADDR; token: $VAULT_TOKEN
    transit_mount = "transit"
    key_name = "baseshift"
    kv_mount = "secret"            # set: ${secret.NAME} reads NAME's `value` from KV v2
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baseshift.core.errors import ConfigError
from baseshift.core.settings import Settings

from .keyfile import KEY_FILE

TABLE = "keys"
KEYS = {"provider", "key_file", "rotation_batch", "kek_max_age_days", "data_key_uses",
        "vault"}
VAULT_KEYS = {"address", "transit_mount", "key_name", "kv_mount", "kv_prefix", "kv_field",
              "namespace", "timeout", "verify"}
PROVIDERS = ("file", "vault")
BATCH_ENV = "BASESHIFT_KEYS_ROTATION_BATCH"


@dataclass(frozen=True, slots=True)
class VaultSettings:
    """Where Vault is and what of it Base Shift uses (its token comes from $VAULT_TOKEN)."""

    address: str
    transit_mount: str = "transit"
    key_name: str = "baseshift"
    kv_mount: str | None = None
    kv_prefix: str = ""
    kv_field: str = "value"
    namespace: str | None = None
    timeout: float = 10.0
    verify: bool | str = True


@dataclass(frozen=True, slots=True)
class KeysSettings:
    """The key plugin's options (see the module docstring)."""

    provider: str
    key_file: Path
    rotation_batch: int = 100
    kek_max_age_days: float = 365.0
    data_key_uses: int = 2 ** 20
    vault: VaultSettings | None = None


def keys_settings(settings: Settings, environ: Mapping[str, str] = os.environ) -> KeysSettings:
    """The options from `settings`; ConfigError naming the key for anything amiss."""
    table = settings.extra.get(TABLE) or {}
    if not isinstance(table, Mapping):
        raise ConfigError("Config 'plugins.keys' must be a table.")
    _known(table, KEYS, "plugins.keys")
    provider = table.get("provider", "file")
    if provider not in PROVIDERS:
        raise _expected("provider", provider, f"one of {', '.join(PROVIDERS)}")
    key_file = Path(table.get("key_file") or settings.data_dir / KEY_FILE)
    batch = environ.get(BATCH_ENV) or table.get("rotation_batch", 100)
    vault = table.get("vault")
    if provider == "vault" and vault is None:
        vault = {}
    return KeysSettings(
        provider=str(provider), key_file=key_file,
        rotation_batch=_positive_int("rotation_batch", batch),
        kek_max_age_days=_positive("kek_max_age_days", table.get("kek_max_age_days", 365)),
        data_key_uses=_positive_int("data_key_uses", table.get("data_key_uses", 2 ** 20)),
        vault=None if vault is None else _vault(vault, environ))


def _vault(table: Any, environ: Mapping[str, str]) -> VaultSettings:
    if not isinstance(table, Mapping):
        raise ConfigError("Config 'plugins.keys.vault' must be a table.")
    _known(table, VAULT_KEYS, "plugins.keys.vault")
    address = table.get("address") or environ.get("VAULT_ADDR")
    if not isinstance(address, str) or not address.startswith(("http://", "https://")):
        raise ConfigError("Vault's address is not set",
                          hint="set [plugins.keys.vault] address or $VAULT_ADDR to "
                               "https://vault.example.com:8200")
    text = {k: str(table[k]) for k in ("transit_mount", "key_name", "kv_prefix", "kv_field",
                                        "namespace", "kv_mount") if table.get(k)}
    verify = table.get("verify", True)
    if not isinstance(verify, (bool, str)):
        raise _expected("vault.verify", verify, "true, false or a CA bundle path")
    return VaultSettings(address=address.rstrip("/"),
                         timeout=_positive("vault.timeout", table.get("timeout", 10.0)),
                         verify=verify, **text)


def _known(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    if unknown := sorted(set(table) - keys):
        raise ConfigError(f"Config '{where}' has unknown key(s) {', '.join(unknown)}.",
                          hint=f"keys: {', '.join(sorted(keys))}")


def _expected(key: str, value: Any, what: str) -> ConfigError:
    return ConfigError(f"Config 'plugins.keys.{key}' has value {value!r}. Expected {what}.")


def _positive(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise _expected(key, value, "a positive number")
    return float(value)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _expected(key, value, "a positive whole number")
    return value
