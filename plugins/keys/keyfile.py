"""The local key file provider (the default): KEKs in a JSON file of the data folder,
readable by this user only.

The file is made on first use with mode 0600 and rewritten atomically (a new file renamed
over it) under a lock file, so a `baseshift keys rotate` and a server sharing it never lose
each other's KEKs; a server reads it again when it changed. A file that others could read,
or that another user owns, is refused: it would give the keys away.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from baseshift.core.errors import ConfigError, SealError
from baseshift.core.json_text import dumps_compact, loads_strict

from .providers import Kek, b64d, b64e

KEY_FILE = "keys.json"
"""The file's name in the data folder, unless `[plugins.keys] key_file` names another."""
NONCE = 12


class LocalKeyFile:
    """A `KeyProvider` keeping 256-bit KEKs in `path`."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] | None = None
        self._seen: tuple[int, int] | None = None

    # ------------------------------------------------------------ the file

    def _check(self, st: os.stat_result) -> None:
        if st.st_uid != os.getuid():
            raise ConfigError(
                f"key file {self.path} belongs to user id {st.st_uid}, not to the user "
                f"running Base Shift ({os.getuid()})",
                hint="chown it to this user, or set [plugins.keys] key_file to a file of "
                     "this user's")
        if st.st_mode & 0o077:
            raise ConfigError(
                f"key file {self.path} can be read or written by others (mode "
                f"{stat.S_IMODE(st.st_mode):04o})", hint=f"chmod 600 {self.path}")

    def _read(self) -> dict[str, Any]:
        st = os.stat(self.path)
        self._check(st)
        if self._data is None or self._seen != (st.st_mtime_ns, st.st_ino):
            try:
                data = loads_strict(self.path.read_text("utf-8"))
                if not isinstance(data, dict) or not isinstance(data.get("keks"), list):
                    raise ValueError("no 'keks' list")
            except ValueError as exc:
                raise ConfigError(f"key file {self.path} is not a Base Shift key file: {exc}",
                                  hint="restore it from a backup; without it no sealed "
                                       "value opens") from exc
            self._data, self._seen = data, (st.st_mtime_ns, st.st_ino)
        return self._data

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(dumps_compact(data))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self._data = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self) -> dict[str, Any]:
        """The file's content, made with a first KEK when there is no file yet."""
        if not self.path.exists():
            with self._locked():
                if not self.path.exists():
                    self._write({"version": 1, "keks": [_new_kek()]})
        return self._read()

    def _change(self, edit: Any) -> Any:
        with self._locked():
            self._data = None
            data = self._load()
            result = edit(data)
            self._write(data)
            return result

    # ------------------------------------------------------------ KeyProvider

    def _entries(self) -> list[dict[str, Any]]:
        return list(self._load()["keks"])

    def _live(self) -> dict[str, Any]:
        live = [k for k in self._entries() if k.get("retired_at") is None]
        if not live:
            raise ConfigError(f"key file {self.path} holds no key that is not retired",
                              hint="restore it from a backup")
        return max(live, key=lambda k: float(k["created_at"]))

    async def current(self) -> Kek:
        return _kek(self._live())

    async def keks(self) -> list[Kek]:
        return sorted((_kek(k) for k in self._entries()), key=lambda k: k.created_at)

    async def wrap(self, dek: bytes) -> tuple[str, str]:
        entry = self._live()
        return entry["id"], _seal(entry, dek)

    def _entry(self, kek_id: str) -> dict[str, Any]:
        for entry in self._entries():
            if entry["id"] == kek_id:
                if entry.get("retired_at") is not None:
                    raise SealError(f"key-encryption key {kek_id!r} is retired")
                return entry
        raise SealError(f"key-encryption key {kek_id!r} is not in key file {self.path}")

    async def unwrap(self, kek_id: str, wrapped: str) -> bytes:
        entry = self._entry(kek_id)
        raw = b64d(wrapped, "a wrapped data key")
        try:
            return AESGCM(b64d(entry["key"], "a key")).decrypt(raw[:NONCE], raw[NONCE:],
                                                                kek_id.encode())
        except (InvalidTag, ValueError) as exc:
            raise SealError(f"a data key wrapped by {kek_id!r} does not open") from exc

    async def rewrap(self, kek_id: str, wrapped: str, to: str) -> tuple[str, str]:
        dek = await self.unwrap(kek_id, wrapped)
        return to, _seal(self._entry(to), dek)

    async def create(self) -> Kek:
        def add(data: dict[str, Any]) -> dict[str, Any]:
            entry = _new_kek()
            data["keks"].append(entry)
            return entry
        return _kek(await asyncio.to_thread(self._change, add))

    async def retire(self, kek_ids: Sequence[str]) -> None:
        now = time.time()

        def mark(data: dict[str, Any]) -> None:
            for entry in data["keks"]:
                if entry["id"] in kek_ids and entry.get("retired_at") is None:
                    # the key stays in the file: a database restored from a backup made
                    # before the rotation needs it (an operator un-retires it by hand)
                    entry["retired_at"] = now
        await asyncio.to_thread(self._change, mark)


def _new_kek() -> dict[str, Any]:
    return {"id": f"local-{secrets.token_hex(8)}", "key": b64e(AESGCM.generate_key(256)),
            "created_at": time.time(), "retired_at": None}


def _kek(entry: dict[str, Any]) -> Kek:
    retired = entry.get("retired_at")
    return Kek(str(entry["id"]), float(entry["created_at"]),
               None if retired is None else float(retired))


def _seal(entry: dict[str, Any], dek: bytes) -> str:
    nonce = os.urandom(NONCE)
    kek = AESGCM(b64d(entry["key"], "a key"))
    return b64e(nonce + kek.encrypt(nonce, dek, str(entry["id"]).encode()))
