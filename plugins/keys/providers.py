"""What a key provider is: the keeper of key-encryption keys (KEKs) that wrap data keys.

The data keys (core/capabilities.py `DataKeys`) never leave the state store unwrapped; a
provider turns a data key into text only it can turn back (`wrap`/`unwrap`), makes a new
current KEK for a rotation (`create`), moves a wrapped key under the current KEK
(`rewrap`) and retires old KEKs once nothing is wrapped by them (`retire`). Builtin: the
local key file (keyfile.py) and HashiCorp Vault's transit engine (vault.py).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from baseshift.core.errors import SealError


@dataclass(frozen=True, slots=True)
class Kek:
    """One key-encryption key as its provider knows it (never the key material)."""

    id: str
    created_at: float
    retired_at: float | None = None


@runtime_checkable
class KeyProvider(Protocol):
    """A keeper of KEKs. `unwrap` raises `SealError` for an unknown or retired KEK or a
    wrapping that does not open; the others may raise `ConfigError` (unreachable, refused)."""

    name: str
    """How the status and the compliance report name it ("file", "vault")."""

    async def current(self) -> Kek:
        """The KEK new data keys are wrapped with (made on first use)."""
        ...

    async def keks(self) -> list[Kek]:
        """Every KEK, retired ones included, oldest first."""
        ...

    async def wrap(self, dek: bytes) -> tuple[str, str]:
        """(kek id, wrapped) of `dek` under the current KEK."""
        ...

    async def unwrap(self, kek_id: str, wrapped: str) -> bytes: ...

    async def rewrap(self, kek_id: str, wrapped: str, to: str) -> tuple[str, str]:
        """(kek id, wrapped) of the same data key under the KEK `to`."""
        ...

    async def create(self) -> Kek:
        """A new KEK, current from now on (the older ones still unwrap)."""
        ...

    async def retire(self, kek_ids: Sequence[str]) -> None:
        """Stop unwrapping with these KEKs."""
        ...


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64e(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str, what: str) -> bytes:
    """The bytes of base64url `text` (padding optional); SealError naming `what` for
    anything else (Python's decoder would skip stray characters silently)."""
    if not _B64URL.fullmatch(text.rstrip("=")) or len(text) % 4 == 1:
        raise SealError(f"{what} is not base64url text")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SealError(f"{what} is not base64url text") from exc
