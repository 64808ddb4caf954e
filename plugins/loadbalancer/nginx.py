"""The NGINX side: the configuration rendered from the registered servers, written
atomically, checked with `nginx -t` (the previous file put back when NGINX rejects it) and
loaded with `nginx -s reload`."""
from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from baseshift.core.errors import BaseShiftError, InputError

from .settings import LbOptions

TIMEOUT = 30.0
"""Seconds `nginx -t` or `nginx -s reload` may take."""


class NginxRejected(InputError):
    """`nginx -t` refused the new configuration; the previous one is back in place."""

    code = "loadbalancer.nginx-rejected"
    status = 422


class NginxFailed(BaseShiftError):
    """NGINX could not be run or did not reload."""

    code = "loadbalancer.nginx-failed"
    status = 502


@dataclass(frozen=True, slots=True)
class Server:
    """A registered upstream server (its address already validated)."""

    address: str
    weight: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "weight": self.weight}


def render(options: LbOptions, servers: list[Server]) -> str:
    """The whole NGINX configuration. Autoescape is off on purpose: it escapes HTML, which
    NGINX syntax is not; every value is validated before it gets here (settings.py)."""
    import jinja2

    source = files("baseshift.plugins.loadbalancer").joinpath(
        "templates/nginx.conf.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,  # noqa: S701
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.from_string(source).render(o=options, servers=servers)


def checksum(path: Path) -> str | None:
    """SHA-256 of the file at `path`, or None when there is none."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def write_atomically(path: Path, text: str | bytes) -> None:
    """Replace `path` with `text` in one rename: NGINX never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _base_args(options: LbOptions) -> list[str]:
    return [options.nginx, "-p", f"{options.prefix}/", "-e", str(options.error_log),
            "-c", str(options.config)]


async def _run(args: list[str]) -> tuple[int, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
    except OSError as exc:
        raise NginxFailed(f"cannot run {args[0]!r}: {exc}",
                          hint="install NGINX or set [plugins.loadbalancer] nginx") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise NginxFailed(f"{args[0]} did not finish within {TIMEOUT:g} s") from None
    return proc.returncode or 0, out.decode(errors="replace").strip()


def prepare(options: LbOptions) -> None:
    """The folders NGINX writes into (its prefix and the log folders)."""
    for folder in {options.prefix, options.error_log.parent, options.access_log.parent,
                   options.pid.parent}:
        folder.mkdir(parents=True, exist_ok=True)


async def install(options: LbOptions, text: str) -> None:
    """Write `text` as the configuration and check it with `nginx -t`; when NGINX rejects
    it, put the previous file back (or remove the new one) and raise NginxRejected with
    NGINX's message."""
    prepare(options)
    try:
        previous: bytes | None = options.config.read_bytes()
    except FileNotFoundError:
        previous = None
    write_atomically(options.config, text)
    code, message = await _run([*_base_args(options), "-t", "-q"])
    if code != 0:
        if previous is None:
            options.config.unlink(missing_ok=True)
        else:
            write_atomically(options.config, previous)
        raise NginxRejected(f"nginx rejected the configuration: {message}",
                            details={"nginx": message})


def running(options: LbOptions) -> int | None:
    """The pid of the NGINX master process of the pid file, when it is alive."""
    try:
        pid = int(options.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


async def reload(options: LbOptions) -> bool:
    """`nginx -s reload` when NGINX runs (True), else nothing (False). The old workers finish
    the requests they hold before they exit: a removed server drains."""
    if running(options) is None:
        return False
    code, message = await _run([*_base_args(options), "-s", "reload"])
    if code != 0:
        raise NginxFailed(f"nginx did not reload: {message}")
    return True
