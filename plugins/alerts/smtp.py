"""The `email` notifier: the notice as a plain-text message through the SMTP server of
`[plugins.alerts.smtp]` (`host`, `port`, `from`, `starttls`, `username`, `password` — the
name of a secret, `timeout`), sent with the standard library's smtplib in a thread.

Header injection is impossible twice over: every header value is made one line first
(`one_line`), and the message is built with `email.policy.SMTP`, which refuses a header
holding a line break."""
from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, ClassVar

from baseshift.core.errors import ConfigError
from baseshift.core.json_text import dumps_compact
from baseshift.core.notifications import Notice

from .targets import SECRET_NAME, bad, one_line, only

ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]{1,64}@[A-Za-z0-9.-]{1,253}")
"""A bare address (`ops@example.com`): no display name, no list, nothing a header could
misread."""
MAX_RECIPIENTS = 20
FIELDS = {"host", "port", "from", "starttls", "username", "password", "timeout"}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """`[plugins.alerts.smtp]`; `password` names a secret."""

    host: str
    sender: str
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_options(cls, table: Any) -> SmtpSettings | None:
        """The table checked (ConfigError naming the key), or None when there is none."""
        if table is None:
            return None
        where = "plugins.alerts.smtp"
        if not isinstance(table, dict):
            raise ConfigError(f"Config '{where}' must be a table")
        unknown = sorted(set(table) - FIELDS)
        if unknown:
            raise ConfigError(f"Config '{where}.{unknown[0]}' is not a known key",
                              hint=f"the keys: {', '.join(sorted(FIELDS))}")
        host, sender = table.get("host"), table.get("from")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"Config '{where}.host' must name the SMTP server")
        if not isinstance(sender, str) or not ADDRESS.fullmatch(sender):
            raise ConfigError(f"Config '{where}.from' must be an e-mail address")
        port = table.get("port", 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"Config '{where}.port' must be a port number, got {port!r}")
        starttls = table.get("starttls", False)
        if not isinstance(starttls, bool):
            raise ConfigError(f"Config '{where}.starttls' must be true or false")
        timeout = table.get("timeout", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"Config '{where}.timeout' must be a positive number")
        username, password = table.get("username"), table.get("password")
        if username is not None and not isinstance(username, str):
            raise ConfigError(f"Config '{where}.username' must be a string")
        if password is not None and (not isinstance(password, str)
                                     or not SECRET_NAME.fullmatch(password)):
            raise ConfigError(f"Config '{where}.password' must name a secret, not hold one",
                              hint="e.g. password = \"SMTP_PASSWORD\", set as a secret")
        return cls(host, sender, port, starttls, username, password, float(timeout))


def message(notice: Notice, sender: str, recipients: list[str]) -> EmailMessage:
    """The e-mail of a notice: a one-line subject, the summary and the notice as JSON."""
    mail = EmailMessage(policy=SMTP)
    mail["Subject"] = one_line(f"[{notice.status}] alert {notice.rule}: {notice.subject}")
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["X-BaseShift-Alert"] = one_line(notice.fingerprint, 64)
    mail.set_content(f"{notice.summary}\n\n{dumps_compact(notice.to_json())}\n")
    return mail


class EmailNotifier:
    """Notifies by e-mail."""

    name: ClassVar[str] = "email"

    def __init__(self, settings: SmtpSettings | None,
                 resolve_secret: Callable[[str], Awaitable[str | None]]) -> None:
        self.settings = settings
        self.resolve_secret = resolve_secret

    def check_target(self, target: Mapping[str, Any], field: str) -> dict[str, Any]:
        if self.settings is None:
            raise bad(f"{field}.type", "is 'email', but no SMTP server is configured",
                      hint="set [plugins.alerts.smtp] host and from in baseshift.toml")
        only(target, {"type", "to"}, field)
        to = target.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not 0 < len(to) <= MAX_RECIPIENTS:
            raise bad(f"{field}.to", f"must be 1 to {MAX_RECIPIENTS} e-mail addresses")
        for i, address in enumerate(to):
            if not isinstance(address, str) or not ADDRESS.fullmatch(address):
                raise bad(f"{field}.to[{i}]", "must be a bare e-mail address "
                          "(name@example.com)")
        return {"to": list(to)}

    async def send(self, notice: Notice, target: Mapping[str, Any]) -> None:
        smtp = self.settings
        if smtp is None:
            raise ConfigError("no SMTP server is configured ([plugins.alerts.smtp])")
        password = await self.resolve_secret(smtp.password) if smtp.password else None
        if smtp.password and not password:
            raise ConfigError(f"secret {smtp.password} (the SMTP password) is not set")
        mail = message(notice, smtp.sender, [str(a) for a in target["to"]])
        await asyncio.to_thread(_send, smtp, password, mail)


def _send(smtp: SmtpSettings, password: str | None, mail: EmailMessage) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.username and password:
            client.login(smtp.username, password)
        client.send_message(mail)

