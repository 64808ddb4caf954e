"""Stored secret values, sealed: the contract between what stores a secret (run inputs
declared `secret`, `secret` outputs, the key API) and the key plugin that encrypts it.

A `Sealer` turns text into a sealed token and back. The builtin `keys` plugin (plugins/keys/)
seals with AES-256-GCM under a data key that a key-encryption key wraps (envelope
encryption); a third-party plugin may seal another way. Sealed tokens start with
`SEALED_PREFIX`, so a reader can tell a sealed value from a plain one without a key.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

SEALED_PREFIX = "bsenc:"


@runtime_checkable
class Sealer(Protocol):
    """Encrypts values for storage and opens them again (to run a job, or for an actor
    holding `secret:read`). `unseal` raises `errors.SealError` for a token it cannot open:
    unknown or retired key, tampered ciphertext, or text that is not a sealed token."""

    async def seal(self, plaintext: str) -> str: ...

    async def unseal(self, sealed: str) -> str: ...


def is_sealed(value: Any) -> bool:
    """Whether `value` is a sealed token (text starting with `SEALED_PREFIX`)."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)
