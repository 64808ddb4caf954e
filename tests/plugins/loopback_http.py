"""A real HTTP/1.1 server on 127.0.0.1 for the `http` executor tests, run in a thread.

Routes:
  /echo            JSON of the request: method, path, query, headers, body
  /json            {"hello": "world"} as application/json
  /text            "plain text" as text/plain
  /looks-json      "[1, 2]" as text/plain
  /empty           204, no body
  /status/N        status N with the body "status N body"
  /redirect        302 to /json
  /big             2000 bytes of "x"
  /latin1          "café" encoded as ISO-8859-1
  /slow            headers and 10 of 1000 promised bytes, then waits for the client to leave
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Loopback:
    """The running server: its base URL and what the tests observe through it."""

    url: str
    slow_started: threading.Event = field(default_factory=threading.Event)
    slow_abandoned: threading.Event = field(default_factory=threading.Event)
    client_ports: list[int] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _route(self) -> None:
        self.server.loopback.client_ports.append(self.client_address[1])
        path = urlsplit(self.path).path
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if path == "/echo":
            self._send(200, "application/json", json.dumps(self._echo(body)).encode())
        elif path == "/json":
            self._send(200, "application/json", b'{"hello": "world"}')
        elif path == "/text":
            self._send(200, "text/plain; charset=utf-8", b"plain text")
        elif path == "/looks-json":
            self._send(200, "text/plain", b"[1, 2]")
        elif path == "/empty":
            self._send(204, None, b"")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, "text/plain", f"status {code} body".encode())
        elif path == "/redirect":
            self._send(302, "text/plain", b"moved", (("Location", "/json"),))
        elif path == "/big":
            self._send(200, "text/plain", b"x" * 2000)
        elif path == "/latin1":
            self._send(200, "text/plain; charset=iso-8859-1", "café".encode("latin-1"))
        elif path == "/slow":
            self._slow()
        else:
            self._send(404, "text/plain", b"no such route")

    def _echo(self, body: bytes) -> dict[str, object]:
        split = urlsplit(self.path)
        return {"method": self.command, "path": split.path, "query": parse_qs(split.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode()}

    def _send(self, status: int, content_type: str | None, body: bytes,
              extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("X-Served-By", "loopback")
        self.send_header("X-Served-By", "tests")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _slow(self) -> None:
        """Promise 1000 bytes, send 10, then wait until the client closes the connection."""
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
        except OSError:  # the client left before this handler got to answer (a loaded
            self.server.loopback.slow_abandoned.set()  # machine, a short timeout)
            return
        self.server.loopback.slow_started.set()
        self.connection.settimeout(20)
        try:
            left = self.connection.recv(1) == b""
        except TimeoutError:
            left = False
        except OSError:  # reset by the client
            left = True
        if left:
            self.server.loopback.slow_abandoned.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.loopback = Loopback(url=f"http://127.0.0.1:{self.server_address[1]}")


class running_server:
    """Context manager: a started server, shut down and closed on exit."""

    def __enter__(self) -> Loopback:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self._server.loopback

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def closed_port() -> int:
    """A loopback port nothing listens on, reserved for this process (`free_port`), so no
    server of another test can be given it meanwhile."""
    from tests.conftest import free_port

    return free_port()
