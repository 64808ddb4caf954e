"""A stand-in for HashiCorp Vault on 127.0.0.1, answering the few endpoints the keys plugin
uses with the shapes of Vault's documented HTTP API (transit: keys, encrypt, decrypt,
rewrap, rotate, config; KV v2: data). Its "ciphertexts" are opaque handles it remembers,
not cryptography: what is tested is the plugin's side of the HTTP boundary."""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "s.fake-vault-token-0123456789"


@dataclass
class TransitKey:
    versions: dict[int, int] = field(default_factory=lambda: {1: int(time.time())})
    min_decryption_version: int = 1

    @property
    def latest(self) -> int:
        return max(self.versions)


@dataclass
class FakeVault:
    """What the server holds, and the requests it saw (method, path, token)."""

    url: str = ""
    keys: dict[str, TransitKey] = field(default_factory=dict)
    sealed: dict[str, tuple[int, str]] = field(default_factory=dict)
    kv: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seal(self, key: TransitKey, plaintext: str) -> dict[str, Any]:
        handle = secrets.token_hex(24)
        text = f"vault:v{key.latest}:{handle}"
        self.sealed[text] = (key.latest, plaintext)
        return {"data": {"ciphertext": text, "key_version": key.latest}}


_TRANSIT = re.compile(r"/v1/(?P<mount>[^/]+)/(?P<op>keys|encrypt|decrypt|rewrap)/(?P<name>[^/]+)"
                      r"(?P<tail>/rotate|/config)?")
_KV = re.compile(r"/v1/(?P<mount>[^/]+)/data/(?P<path>.+)")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_GET

    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> None:
        vault = self.server.vault
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.loads(raw) if raw else {}
        path = self.path.split("?")[0]
        token = self.headers.get("X-Vault-Token")
        with vault.lock:
            vault.seen.append((self.command, path, token))
            if token != TOKEN:
                return self._send(403, {"errors": ["permission denied"]})
            if match := _TRANSIT.fullmatch(path):
                status, answer = _transit(vault, self.command, match, body)
            elif (match := _KV.fullmatch(path)) and self.command == "GET":
                found = vault.kv.get(f"{match['mount']}/{match['path']}")
                status, answer = (404, {"errors": []}) if found is None else (200, {
                    "data": {"data": found, "metadata": {
                        "created_time": "2026-01-01T00:00:00Z", "deletion_time": "",
                        "destroyed": False, "version": 1}}})
            else:
                status, answer = 404, {"errors": [f"no handler for route {path!r}"]}
        self._send(status, answer)


def _bad(message: str) -> tuple[int, Any]:
    return 400, {"errors": [message]}


def _transit(vault: FakeVault, method: str, match: re.Match[str], body: Any
             ) -> tuple[int, Any]:
    op, name, tail = match["op"], match["name"], match["tail"]
    key = vault.keys.get(name)
    if op == "keys" and tail is None and method == "POST":
        vault.keys.setdefault(name, TransitKey())
        return 204, None
    if key is None:
        return (404, {"errors": []}) if method == "GET" else _bad("encryption key not found")
    if op == "keys" and tail is None:
        return 200, {"data": {"name": name, "type": "aes256-gcm96",
                              "latest_version": key.latest,
                              "min_decryption_version": key.min_decryption_version,
                              "keys": {str(v): t for v, t in key.versions.items()}}}
    if tail == "/rotate":
        key.versions[key.latest + 1] = int(time.time())
        return 204, None
    if tail == "/config":
        key.min_decryption_version = int(body["min_decryption_version"])
        return 204, None
    if op == "encrypt":
        return 200, vault.seal(key, body["plaintext"])
    found = vault.sealed.get(body.get("ciphertext", ""))
    if found is None:
        return _bad("invalid ciphertext: unable to decrypt")
    if found[0] < key.min_decryption_version:
        return _bad("ciphertext or signature version is disallowed by policy (too old)")
    if op == "decrypt":
        return 200, {"data": {"plaintext": found[1]}}
    return 200, vault.seal(key, found[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    vault: FakeVault


@contextmanager
def fake_vault() -> Iterator[FakeVault]:
    """A running stand-in, stopped afterwards."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.vault = FakeVault(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.vault
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
