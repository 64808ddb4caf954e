"""What `baseshift serve` listens on, kept on the application (`stash[LISTENER]`) for the
parts that report it (the TLS control of the compliance report)."""
from __future__ import annotations

from dataclasses import dataclass

from baseshift.core.stash import StashKey


@dataclass(frozen=True, slots=True)
class Listener:
    """The address served and, for HTTPS, the certificate file (None: plain HTTP)."""

    host: str
    port: int
    certfile: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"


LISTENER: StashKey[Listener] = StashKey("server.listener")
"""Set by `baseshift serve` before the application starts; absent when the ASGI app is
served some other way (`hypercorn server:app`, tests)."""
