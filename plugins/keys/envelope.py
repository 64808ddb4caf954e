"""Envelope encryption: values sealed with AES-256-GCM under data keys that a key provider
wraps, and the `Sealer` of stored secret values built on it.

A sealed value is `bsenc:v1:<data key id>:<base64url(nonce | ciphertext)>`; the data key's
id and purpose are the cipher's associated data, so a token moved to another key or
another purpose does not open. A data key seals many values (until `renew_uses` values or
`renew_after` seconds), so sealing costs no store write; unwrapped keys stay in a bounded
cache. Every failure to open is a `SealError`.
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from baseshift.core.capabilities import DataKeyRecord, DataKeys
from baseshift.core.errors import SealError
from baseshift.core.sealing import SEALED_PREFIX

from .providers import KeyProvider, b64d, b64e

VERSION = "v1"
NONCE = 12
STORE = "store"
"""The purpose of data keys sealing stored secret values (run inputs and outputs)."""
API = "api"
"""The purpose of data keys made by the key API (`POST /api/v1/keys/generate`)."""
RENEW_USES = 2 ** 20
RENEW_AFTER = 86400.0
CACHE_SIZE = 1024
KEY_ID = re.compile(r"dk_[0-9a-f]{32}")
_TOKEN = re.compile(rf"{re.escape(SEALED_PREFIX)}{VERSION}:(dk_[0-9a-f]{{32}}):([A-Za-z0-9_-]+)")


@dataclass(frozen=True, slots=True)
class Token:
    """A sealed value, parsed: the data key it names and its nonce and ciphertext."""

    key_id: str
    payload: bytes

    @classmethod
    def parse(cls, text: str) -> Token:
        match = _TOKEN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise SealError(f"not a sealed value: expected {SEALED_PREFIX}{VERSION}:<key id>:"
                            "<base64url data>")
        payload = b64d(match.group(2), "the sealed data")
        if len(payload) < NONCE + 16:
            raise SealError("the sealed data is too short to be AES-GCM ciphertext")
        return cls(match.group(1), payload)


def _aad(key_id: str, purpose: str) -> bytes:
    return f"{SEALED_PREFIX}{VERSION}:{key_id}:{purpose}".encode()


class Envelope:
    """Data keys of a store, wrapped by a provider: made, opened (cached) and used."""

    def __init__(self, store: DataKeys, provider: KeyProvider, *,
                 cache_size: int = CACHE_SIZE, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.provider = provider
        self._cache: OrderedDict[str, tuple[str, AESGCM]] = OrderedDict()
        self._cache_size = cache_size
        self._clock = clock

    async def new_key(self, purpose: str) -> DataKeyRecord:
        """A new data key for `purpose`, stored wrapped."""
        dek = AESGCM.generate_key(256)
        kek_id, wrapped = await self.provider.wrap(dek)
        record = DataKeyRecord(f"dk_{secrets.token_hex(16)}", purpose, kek_id, wrapped,
                               self._clock())
        await self.store.save_data_key(record)
        self._remember(record.id, purpose, AESGCM(dek))
        return record

    def _remember(self, key_id: str, purpose: str, cipher: AESGCM) -> None:
        self._cache[key_id] = (purpose, cipher)
        self._cache.move_to_end(key_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def key(self, key_id: str) -> tuple[str, AESGCM] | None:
        """(purpose, cipher) of data key `key_id`, or None when the store has no such key."""
        found = self._cache.get(key_id)
        if found is not None:
            self._cache.move_to_end(key_id)
            return found
        record = await self.store.load_data_key(key_id)
        if record is None:
            return None
        cipher = AESGCM(await self.provider.unwrap(record.kek_id, record.wrapped))
        self._remember(key_id, record.purpose, cipher)
        return record.purpose, cipher

    @staticmethod
    def seal_with(key_id: str, purpose: str, cipher: AESGCM, plaintext: str) -> str:
        nonce = os.urandom(NONCE)
        data = cipher.encrypt(nonce, plaintext.encode("utf-8", "surrogatepass"),
                              _aad(key_id, purpose))
        return f"{SEALED_PREFIX}{VERSION}:{key_id}:{b64e(nonce + data)}"

    async def unseal(self, token: Token, purpose: str) -> str:
        """The plaintext of `token`, whose data key must have `purpose`."""
        found = await self.key(token.key_id)
        if found is None:
            raise SealError(f"data key {token.key_id} is unknown")
        if found[0] != purpose:
            raise SealError(f"data key {token.key_id} does not seal {purpose} values")
        return open_with(token, purpose, found[1])


def open_with(token: Token, purpose: str, cipher: AESGCM) -> str:
    """The plaintext of `token` under `cipher`; SealError when it does not open."""
    try:
        data = cipher.decrypt(token.payload[:NONCE], token.payload[NONCE:],
                              _aad(token.key_id, purpose))
    except InvalidTag as exc:
        raise SealError("the sealed value does not open: tampered, or sealed with another "
                        "key") from exc
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:  # pragma: no cover - GCM authenticated it
        raise SealError("the sealed value is not text") from exc


class StoreSealer:
    """The `core.sealing.Sealer` of stored secret values: data keys of purpose "store",
    the current one renewed after `renew_uses` values or `renew_after` seconds."""

    def __init__(self, envelope: Envelope, *, renew_uses: int = RENEW_USES,
                 renew_after: float = RENEW_AFTER) -> None:
        self.envelope = envelope
        self.renew_uses = renew_uses
        self.renew_after = renew_after
        self._current: tuple[str, AESGCM] | None = None
        self._uses = 0
        self._since = 0.0
        self._lock = asyncio.Lock()

    async def _key(self) -> tuple[str, AESGCM]:
        async with self._lock:
            now = time.monotonic()
            if (self._current is None or self._uses >= self.renew_uses
                    or now - self._since >= self.renew_after):
                record = await self.envelope.new_key(STORE)
                found = await self.envelope.key(record.id)
                assert found is not None
                self._current, self._uses, self._since = (record.id, found[1]), 0, now
            self._uses += 1
            return self._current

    async def seal(self, plaintext: str) -> str:
        key_id, cipher = await self._key()
        return Envelope.seal_with(key_id, STORE, cipher, plaintext)

    async def unseal(self, sealed: str) -> str:
        return await self.envelope.unseal(Token.parse(sealed), STORE)
