"""Python steps used by the example workflows (imported from this folder by `uses python`)."""
from __future__ import annotations

import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STOCK = {"apple": 12, "pear": 0, "plum": 5}


def validate_payment(amount: float, currency: str) -> dict[str, Any]:
    """A payment is valid when it is positive, below 10,000 and in a known currency."""
    ok = 0 < amount < 10_000 and currency in ("EUR", "USD", "GBP")
    return {"status": "valid" if ok else "invalid", "amount": amount, "currency": currency}


def check_stock(sku: str, quantity: int = 1) -> dict[str, Any]:
    available = STOCK.get(sku, 0)
    return {"sku": sku, "in_stock": available >= quantity, "available": available}


def square(x: float) -> float:
    return x * x


def total(values: list[float]) -> dict[str, float]:
    return {"sum": sum(values), "count": len(values), "mean": sum(values) / max(len(values), 1)}


def sometimes_fails(run_id: str, succeed_on: int = 3) -> dict[str, int]:
    """Fails until its `succeed_on`-th attempt within one run (a flaky dependency)."""
    counter = Path(tempfile.gettempdir()) / f"baseshift-flaky-{run_id}"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    if attempt < succeed_on:
        raise ConnectionError(f"upstream unavailable (attempt {attempt})")
    counter.unlink()
    return {"succeeded_on_attempt": attempt}


class _PaymentHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        reply = json.dumps({"transactionId": f"tx-{body.get('order_id', 'unknown')}",
                            "charged": body.get("amount")}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep the example's terminal output clean."""


_server: ThreadingHTTPServer | None = None


def start_payment_stub() -> dict[str, str]:
    """Start (once per process) a local payment API on a free loopback port."""
    global _server
    if _server is None:
        _server = ThreadingHTTPServer(("127.0.0.1", 0), _PaymentHandler)
        threading.Thread(target=_server.serve_forever, daemon=True).start()
    host, port = _server.server_address[:2]
    return {"url": f"http://{host}:{port}/process"}


def shout(text: str) -> str:
    return text.upper() + "!"
