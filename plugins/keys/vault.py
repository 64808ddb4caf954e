"""HashiCorp Vault (the `vault` extra, `hvac`): a key provider on the transit engine, and
`${secret.NAME}` read from the KV version 2 engine.

The transit key `key_name` is the key-encryption key; each of its versions is one KEK,
named `vault:<key_name>:v<N>`. Vault wraps and unwraps data keys (`encrypt`/`decrypt`),
rotation adds a version (`rotate`) and moves data keys with `rewrap` (the data key never
leaves Vault in the clear), and retiring raises the key's `min_decryption_version`. The
token comes from $VAULT_TOKEN and is never logged or shown.
"""
from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from baseshift.core.errors import ConfigError, SealError, StoreError
from baseshift.core.stash import Stash, StashKey

from .providers import Kek
from .settings import VaultSettings

T = TypeVar("T")
_CIPHERTEXT = re.compile(r"vault:v(\d+):[A-Za-z0-9+/=]+")
_SECRET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
CLIENT: StashKey[Any] = StashKey("keys.vault-client")


class _Refused(Exception):
    """Vault answered 400 or 404 (the transit key does not exist yet)."""


def vault_client(options: VaultSettings) -> Any:
    """An `hvac.Client` for `options`, with $VAULT_TOKEN; ConfigError when hvac or the token
    is missing."""
    try:
        import hvac
    except ImportError as exc:
        raise ConfigError("the Vault key provider needs the hvac package",
                          hint="pip install 'baseshift[vault]'") from exc
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        raise ConfigError("VAULT_TOKEN is not set", hint="export the Vault token Base Shift "
                          "uses as VAULT_TOKEN (it is never written to the configuration)")
    return hvac.Client(url=options.address, token=token, namespace=options.namespace,
                       timeout=options.timeout, verify=options.verify)


async def _call(options: VaultSettings, fn: Callable[[], T], refused: type[Exception]
                = StoreError) -> T:
    """`fn()` in a thread; Vault's refusals (4xx) become `refused`, anything else a
    StoreError naming Vault (the token is never in the message)."""
    from hvac import exceptions
    from requests import RequestException

    try:
        return await asyncio.to_thread(fn)
    except (exceptions.InvalidRequest, exceptions.InvalidPath) as exc:
        raise refused(f"Vault refused: {_reason(exc)}") from exc
    except exceptions.Forbidden as exc:
        raise StoreError(f"Vault at {options.address} refused the token: {_reason(exc)}",
                         hint="give the token a policy for the transit key and KV path"
                         ) from exc
    except (exceptions.VaultError, RequestException) as exc:
        raise StoreError(f"Vault at {options.address} failed: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


class VaultTransit:
    """A `KeyProvider` on Vault's transit engine."""

    name = "vault"

    def __init__(self, client: Any, options: VaultSettings) -> None:
        self.client = client
        self.options = options
        self._transit = client.secrets.transit
        self._ready = False

    def _kek_id(self, version: int) -> str:
        return f"vault:{self.options.key_name}:v{version}"

    def _version(self, kek_id: str) -> int:
        prefix = f"vault:{self.options.key_name}:v"
        if not kek_id.startswith(prefix) or not kek_id[len(prefix):].isdigit():
            raise SealError(f"key-encryption key {kek_id!r} is not a version of Vault "
                            f"transit key {self.options.key_name!r}")
        return int(kek_id[len(prefix):])

    async def _key(self) -> dict[str, Any]:
        """The transit key's description, made first when Vault has no such key."""
        o = self.options

        def read() -> Any:
            return self._transit.read_key(name=o.key_name, mount_point=o.transit_mount)
        try:
            found = await _call(o, read, _Refused)
        except _Refused:
            await _call(o, lambda: self._transit.create_key(
                name=o.key_name, key_type="aes256-gcm96", mount_point=o.transit_mount))
            found = await _call(o, read)
        data: dict[str, Any] = found["data"]
        self._ready = True
        return data

    async def keks(self) -> list[Kek]:
        data = await self._key()
        floor = int(data.get("min_decryption_version") or 1)
        out = []
        for version, created in sorted(data["keys"].items(), key=lambda kv: int(kv[0])):
            at = float(created) if isinstance(created, (int, float)) else 0.0
            out.append(Kek(self._kek_id(int(version)), at, None if int(version) >= floor
                           else at))
        return out

    async def current(self) -> Kek:
        return (await self.keks())[-1]

    def _of(self, ciphertext: str) -> tuple[str, str]:
        match = _CIPHERTEXT.fullmatch(ciphertext)
        if match is None:
            raise StoreError("Vault answered a ciphertext that is not `vault:vN:...`")
        return self._kek_id(int(match.group(1))), ciphertext

    async def wrap(self, dek: bytes) -> tuple[str, str]:
        o = self.options
        if not self._ready:  # made as an aes256-gcm96 key, not whatever an upsert makes
            await self._key()
        found = await _call(o, lambda: self._transit.encrypt_data(
            name=o.key_name, plaintext=base64.b64encode(dek).decode(),
            mount_point=o.transit_mount))
        return self._of(str(found["data"]["ciphertext"]))

    async def unwrap(self, kek_id: str, wrapped: str) -> bytes:
        o = self.options
        match = _CIPHERTEXT.fullmatch(wrapped)
        if match is None or int(match.group(1)) != self._version(kek_id):
            raise SealError(f"the data key's wrapping is not Vault ciphertext of {kek_id}")
        found = await _call(o, lambda: self._transit.decrypt_data(
            name=o.key_name, ciphertext=wrapped, mount_point=o.transit_mount), SealError)
        try:
            return base64.b64decode(found["data"]["plaintext"], validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise SealError(f"Vault's unwrapping under {kek_id} is not a data key") from exc

    async def rewrap(self, kek_id: str, wrapped: str, to: str) -> tuple[str, str]:
        o = self.options
        self._version(to)
        found = await _call(o, lambda: self._transit.rewrap_data(
            name=o.key_name, ciphertext=wrapped, mount_point=o.transit_mount), SealError)
        return self._of(str(found["data"]["ciphertext"]))

    async def create(self) -> Kek:
        o = self.options
        await self._key()
        await _call(o, lambda: self._transit.rotate_key(name=o.key_name,
                                                         mount_point=o.transit_mount))
        return await self.current()

    async def retire(self, kek_ids: Sequence[str]) -> None:
        if not kek_ids:
            return
        o = self.options
        floor = max(self._version(k) for k in kek_ids) + 1
        await _call(o, lambda: self._transit.update_key_configuration(
            name=o.key_name, min_decryption_version=floor, mount_point=o.transit_mount))


async def read_secret(stash: Stash, options: VaultSettings, name: str) -> str | None:
    """The `kv_field` of KV v2 secret `kv_prefix + name`, or None when there is none (or
    `name` is not a plain name: it never climbs out of `kv_prefix`)."""
    from hvac.exceptions import InvalidPath

    if not _SECRET_NAME.fullmatch(name):
        return None

    client = stash.get(CLIENT)
    if client is None:
        client = stash.setdefault(CLIENT, vault_client(options))
    assert options.kv_mount is not None
    mount = options.kv_mount

    def read() -> Any:
        try:
            return client.secrets.kv.v2.read_secret_version(
                path=f"{options.kv_prefix}{name}", mount_point=mount,
                raise_on_deleted_version=True)
        except InvalidPath:
            return None
    found = await _call(options, read)
    if found is None:
        return None
    value = (found.get("data") or {}).get("data", {}).get(options.kv_field)
    return None if value is None else str(value)
