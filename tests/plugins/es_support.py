"""A recorded Elasticsearch-like bulk endpoint on 127.0.0.1, in a thread, for the log
shipper's tests (plugins/logship/): it keeps every `POST /_bulk` it gets and answers as it is
told — whole-request statuses (429, 500), item statuses (a mapping error, a busy shard), or
down (the connection closes with no answer)."""
from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.tls_support import Pki

JSON = dict[str, Any]
ItemStatus = Callable[[JSON, int], int]
"""The status of one document, given it and how many times the server has seen it before."""
WAIT_ROUNDS = 600


@dataclass
class BulkRequest:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    actions: list[JSON]
    docs: list[JSON]


@dataclass
class RecordedElastic:
    url: str
    requests: list[BulkRequest] = field(default_factory=list)
    accepted: list[JSON] = field(default_factory=list)
    """Documents answered with a 2xx item status, in order."""
    statuses: deque[int] = field(default_factory=deque)
    """Whole-request statuses for the next requests, then 200 with item results."""
    item_status: ItemStatus = lambda doc, seen: 201
    down: bool = False
    seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[str]:
        with self.lock:
            return [d.get("message", "") for d in self.accepted]

    async def wait_for(self, check: Callable[[], bool], what: str) -> None:
        """Wait until `check()` holds (the shipper works on its own schedule)."""
        for _ in range(WAIT_ROUNDS):
            if check():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{what}: {len(self.requests)} requests, {self.messages()}")

    def answer(self, request: BulkRequest) -> tuple[int, JSON | None]:
        with self.lock:
            self.requests.append(request)
            if self.down:
                return 0, None
            if self.statuses:
                status = self.statuses.popleft()
                return status, {"error": {"type": "test_error"}, "status": status}
            items = [self._item(a, d) for a, d in zip(request.actions, request.docs,
                                                         strict=True)]
        errors = any(i["create"]["status"] >= 300 for i in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _item(self, action: JSON, doc: JSON) -> JSON:
        key = json.dumps(doc, sort_keys=True)
        seen = self.seen.get(key, 0)
        self.seen[key] = seen + 1
        status = self.item_status(doc, seen)
        result: JSON = {"_index": action["create"]["_index"], "status": status}
        if status < 300:
            self.accepted.append(doc)
        else:
            kind = "mapper_parsing_exception" if status < 429 else "es_rejected_execution"
            result["error"] = {"type": kind, "reason": "as the test said"}
        return {"create": result}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        rows = [json.loads(x) for x in body.decode().splitlines() if x]
        request = BulkRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                              rows[0::2], rows[1::2])
        status, answer = self.server.elastic.answer(request)
        if answer is None:
            self.close_connection = True
            return
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # the client gave up waiting (a shipper stopping): as a server would
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pki: Pki | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        scheme = "http"
        if pki is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(pki.cert, pki.key)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            scheme = "https"
        self.elastic = RecordedElastic(url=f"{scheme}://127.0.0.1:{self.server_address[1]}")


@contextmanager
def recorded_elastic(pki: Pki | None = None) -> Iterator[RecordedElastic]:
    """`with recorded_elastic() as es:` a started server (HTTPS with the certificate of
    `pki`), closed on exit."""
    server = _Server(pki)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.elastic
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
