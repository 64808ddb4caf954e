"""The servers one is signed in to, kept in the user's configuration folder
(`$XDG_CONFIG_HOME/baseshift/credentials.json`, else `~/.config/…`): readable by its owner
only, replaced whole on every change, never printed."""
from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from baseshift.core.errors import ConfigError, InputError
from baseshift.core.json_text import write_json_file

FILE_NAME = "credentials.json"
SESSION, API_TOKEN = "session", "api-token"


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/baseshift`, or `~/.config/baseshift` (the XDG default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "baseshift"


def server_url(text: str) -> str:
    """A server's base URL as it is stored: scheme and address, no trailing slash."""
    url = text.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"{text!r} is not a server URL",
                         hint="give its address with the scheme, e.g. https://baseshift.example")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InputError(f"{text!r} is not a server URL: give no credentials, query or "
                         "fragment in it")
    return url


@dataclass(frozen=True, slots=True)
class Login:
    """What one server accepts from us: a session (an access token and the refresh token
    that renews it) or an API token. The tokens never appear in a repr."""

    kind: str
    user: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    ca_file: str | None = None

    def renewed(self, access: str, refresh: str, expires_at: float) -> Login:
        return replace(self, access_token=access, refresh_token=refresh, expires_at=expires_at)


@dataclass(frozen=True, slots=True)
class Credentials:
    servers: dict[str, Login]
    default: str | None = None

    def with_login(self, url: str, login: Login, *, default: bool = True) -> Credentials:
        """`url`'s login stored; signing in makes it the default server, renewing a
        session does not (`default=False`)."""
        keep = self.default if self.default in self.servers else url
        return Credentials({**self.servers, url: login}, url if default else keep)

    def without(self, url: str) -> Credentials:
        servers = {k: v for k, v in self.servers.items() if k != url}
        default = self.default if self.default in servers else next(iter(servers), None)
        return Credentials(servers, default)


class CredentialFile:
    """The credentials file of one configuration folder."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or config_dir()
        self.path = self.folder / FILE_NAME

    def load(self) -> Credentials:
        """The stored credentials (none when there is no file). ConfigError for a file that
        others may read or that someone else owns: its tokens may be known."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return Credentials({})
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, encoding="utf-8") as handle:
            self._check_private(os.fstat(handle.fileno()))
            text = handle.read()
        return self._parse(text)

    def _check_private(self, info: os.stat_result) -> None:
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid != os.getuid():
            raise ConfigError(f"{self.path} belongs to another user; it is not used",
                              hint="remove it and run `baseshift login` again")
        if mode & 0o077:
            raise ConfigError(
                f"{self.path} may be read by other users (mode {mode:04o}); its tokens are "
                "not used",
                hint=f"run `chmod 600 {self.path}`, and `baseshift logout` then `baseshift "
                     "login` if others could have read it")

    def _parse(self, text: str) -> Credentials:
        try:
            data = json.loads(text)
            servers = {url: Login(**entry) for url, entry in data.get("servers", {}).items()}
            default = data.get("default")
        except (ValueError, TypeError, AttributeError):
            raise ConfigError(f"{self.path} is not a credentials file written by Base Shift",
                              hint="remove it and run `baseshift login` again") from None
        return Credentials(servers, default if default in servers else None)

    def save(self, credentials: Credentials) -> None:
        """Replace the file at once (a temporary file in the same folder, then a rename):
        a reader sees the old or the new file, never half of one; mode 0600 from the
        start."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        data: dict[str, Any] = {"default": credentials.default,
                                "servers": {u: asdict(v) for u, v in credentials.servers.items()}}
        write_json_file(self.path, data)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while a refresh token is spent and its successor stored: two commands that
        renew a session at once would otherwise both spend the same refresh token, and the
        server ends a session whose refresh token is used twice."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.folder / ".credentials.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
