"""The `webhook` notifier: POSTs the notice as JSON to the rule's URL (http or https only,
no credentials in it, redirects not followed), retried a few times, optionally signed
with HMAC-SHA256 of the body under a secret the rule names (`X-BaseShift-Signature:
sha256=<hex>`, the header the webhook trigger checks)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from baseshift.core.json_text import dumps_compact
from baseshift.core.notifications import Notice

from .targets import CONTROL, bad, only, secret_name

if TYPE_CHECKING:  # imported when a notice is sent: every process start would pay for it
    import httpx

SIGNATURE = "X-BaseShift-Signature"
MAX_URL = 2000


class NotifyFailed(Exception):
    """A notice that did not go out (the message names the host, never the whole URL,
    whose path or query may hold a token)."""


class WebhookNotifier:
    """Notifies by HTTP POST."""

    name: ClassVar[str] = "webhook"

    def __init__(self, resolve_secret: Callable[[str], Awaitable[str | None]], *,
                 timeout: float = 10.0, attempts: int = 3, retry_delay: float = 1.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.resolve_secret = resolve_secret
        self.timeout = timeout
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.transport = transport

    def check_target(self, target: Mapping[str, Any], field: str) -> dict[str, Any]:
        only(target, {"type", "url", "secret"}, field)
        url = target.get("url")
        if not isinstance(url, str) or not url or len(url) > MAX_URL or CONTROL.search(url) \
                or " " in url:
            raise bad(f"{field}.url", f"must be an http or https URL of at most {MAX_URL} "
                      "characters")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad(f"{field}.url", "must be an http or https URL with a host",
                      hint=f"got scheme {parts.scheme or 'none'!r}")
        if parts.username is not None or parts.password is not None:
            raise bad(f"{field}.url", "must not hold credentials",
                      hint="sign the calls with a secret instead ('secret')")
        checked: dict[str, Any] = {"url": url}
        if target.get("secret") is not None:
            checked["secret"] = secret_name(target["secret"], f"{field}.secret")
        return checked

    async def send(self, notice: Notice, target: Mapping[str, Any]) -> None:
        body = dumps_compact(notice.to_json()).encode()
        headers = {"content-type": "application/json", "user-agent": "baseshift-alerts"}
        if target.get("secret"):
            key = await self.resolve_secret(str(target["secret"]))
            if not key:
                raise NotifyFailed(f"secret {target['secret']} is not set")
            digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE] = f"sha256={digest}"
        url = str(target["url"])
        host = urlsplit(url).hostname
        why = ""
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False,
                                     transport=self.transport, trust_env=False) as client:
            for attempt in range(self.attempts):
                if attempt:
                    await asyncio.sleep(self.retry_delay * attempt)
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    why = type(exc).__name__
                    continue
                if response.is_success:
                    return
                why = f"answered {response.status_code}"
        raise NotifyFailed(f"webhook to {host} failed {self.attempts} time(s): {why}")
