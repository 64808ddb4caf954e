"""A sealer for tests of secret values, until the builtin `keys` plugin seals them.

`sealer_plugins()` is what a test registers: this test-only sealer while no builtin plugin
named `keys` exists, nothing once it does (the tests then run against the real one). Tests
assert only what holds for any sealer: the plaintext is never stored, `***` is shown, the
value is revealed with `secret:read` and the job receives it exactly.
"""
from __future__ import annotations

import base64
import hashlib

from baseshift.core.errors import SealError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.plugins import BUILTIN_PLUGINS
from baseshift.core.sealing import SEALED_PREFIX, Sealer

_KEY = hashlib.sha256(b"baseshift tests only").digest()


def _xor(data: bytes) -> bytes:
    return bytes(b ^ _KEY[i % len(_KEY)] for i, b in enumerate(data))


class XorSealer:
    """Reversible, not secure: the text's UTF-8 XORed with a fixed key, then base64."""

    async def seal(self, plaintext: str) -> str:
        return SEALED_PREFIX + base64.urlsafe_b64encode(_xor(plaintext.encode())).decode()

    async def unseal(self, sealed: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise SealError("not a sealed value")
        return _xor(base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX))).decode()


class SealerPlugin:
    """The test plugin: provides `XorSealer`."""

    @hookimpl
    def provide_sealer(self) -> Sealer:
        return XorSealer()


def sealer_plugins() -> tuple[object, ...]:
    """The plugins a test registers so that secret values can be sealed."""
    return () if "keys" in BUILTIN_PLUGINS else (SealerPlugin(),)
