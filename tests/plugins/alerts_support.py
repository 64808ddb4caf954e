"""Helpers of the alert tests: a webhook recorder and a real SMTP server (aiosmtpd), both on
loopback in threads, a clock the test sets, and workflows that fail or wait."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

WORKFLOWS = {
    "breaks": 'workflow breaks {\n  version "1.0.0"\n'
              '  job go uses shell { with { command: "exit 3" } }\n}\n',
    "works": 'workflow works {\n  version "1.0.0"\n'
             '  job go uses shell { with { command: "true" } }\n}\n',
    "waits": 'workflow waits {\n  version "1.0.0"\n'
             '  job hold uses manual { with { prompt: "go on?" } }\n}\n',
}


def write_workflows(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in WORKFLOWS.items():
        (folder / f"{name}.bsw").write_text(text)
    return folder


class SetClock:
    """The real time moved forward by the test (`advance`); the evaluator is ticked by
    hand, so `sleep` only yields."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def advance(self, seconds: float) -> None:
        self.ahead += seconds

    @property
    def at(self) -> float:
        return time.time() + self.ahead

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


@dataclass
class Recorder:
    """What the webhook recorder received, and the statuses it answers with next (200 once
    they run out)."""

    url: str
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.calls]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        recorder = self.server.recorder
        with recorder.lock:
            recorder.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = recorder.answers.pop(0) if recorder.answers else 200
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    recorder: Recorder
    daemon_threads = True


@contextmanager
def webhook_recorder() -> Iterator[Recorder]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.recorder = Recorder(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Mailbox:
    """What the SMTP server received: each message's envelope and raw content, and the
    credentials clients signed in with."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[bytes, bytes]] = []

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"smtp-pass")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else \
            str(envelope.content).encode()
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_server(*, auth: bool = False) -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd in its own thread): its port and mailbox;
    with `auth`, it offers AUTH (password `smtp-pass`; no TLS on loopback)."""
    mailbox = Mailbox()
    port = free_port()
    more: dict[str, Any] = {"authenticator": mailbox.authenticate,
                            "auth_require_tls": False} if auth else {}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **more)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()
