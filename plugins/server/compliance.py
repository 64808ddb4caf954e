"""The transport control of the compliance report (`compliance_controls`): whether this
server answers over HTTPS (`baseshift serve --certfile --keyfile`), its certificate's
expiry, and HSTS, which every HTTPS answer carries (web/headers.py)."""
from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from baseshift.core.appface import App
from baseshift.core.compliance import Control
from baseshift.core.hookspecs import hookimpl
from baseshift.web.headers import HSTS

from .listener import LISTENER, Listener

TRANSPORT = {"GDPR": ("Article 32",), "HIPAA": ("164.312(e)(1)", "164.312(e)(2)(ii)"),
             "SOC 2": ("CC6.7",)}
TITLE = "Encryption in transit (HTTPS with HSTS)"


@hookimpl
def compliance_controls(baseshift: App) -> list[Control]:
    return [tls(baseshift.stash.get(LISTENER))]


def tls(listener: Listener | None, now: float | None = None) -> Control:
    if listener is None:
        return Control("server.tls", TITLE, "pending",
                       "not served by `baseshift serve`: whether requests reach it over "
                       "HTTPS is unknown", TRANSPORT)
    where = f"{listener.host}:{listener.port}"
    if listener.certfile is None:
        return Control("server.tls", TITLE, "pending",
                       f"serving plain HTTP on {where} (no --certfile): requests and tokens "
                       "travel unencrypted unless a proxy in front terminates TLS", TRANSPORT)
    expires = _expiry(Path(listener.certfile))
    now = time.time() if now is None else now
    valid = expires is not None and expires.timestamp() > now
    until = "unreadable" if expires is None else expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Control("server.tls", TITLE, "implemented" if valid else "pending",
                   f"serving HTTPS on {where} with certificate {listener.certfile} (valid "
                   f"until {until}{'' if valid else ': EXPIRED'}); "
                   f"Strict-Transport-Security: {HSTS} on every HTTPS answer", TRANSPORT)


def _expiry(certfile: Path) -> datetime | None:
    """When the (first) certificate of the file expires, or None when it cannot be read."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    except (OSError, ValueError):
        return None
    return cert.not_valid_after_utc.astimezone(UTC)
