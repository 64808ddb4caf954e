"""`baseshift serve`: the REST API and web UI under Hypercorn, stopped cleanly by a signal."""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from baseshift.core.app.logs import log_format_arg
from baseshift.core.audit import SYSTEM_ACTING, acting_as
from baseshift.core.command import Command, ExitCode, run_async, settings_from
from baseshift.core.hookspecs import hookimpl

from .listener import LISTENER, Listener

if TYPE_CHECKING:
    from hypercorn.config import Config
    from starlette.types import ASGIApp

    from baseshift.core.app.application import BaseShift
    from baseshift.core.settings import Settings

GRACEFUL_SECONDS = 5.0
"""How long open requests (live event streams) get to finish when the server stops."""


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--workflows", metavar="DIR",
                   help="folder of .bsw files to load and watch (env BASESHIFT_WORKFLOWS; "
                   "default ./workflows)")
    p.add_argument("--certfile", metavar="PEM",
                   help="serve HTTPS with this certificate (chain) file; needs --keyfile")
    p.add_argument("--keyfile", metavar="PEM", help="the private key of --certfile")
    p.add_argument("--auth", choices=("on", "none"),
                   help="`on` (the default): every request needs a permission; `none`: "
                   "anyone reaching the port may do anything, refused unless --host is a "
                   "loopback address (env BASESHIFT_AUTH)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print warnings and errors only: no line per request, reload or "
                   "failed run")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="serve from N processes sharing the port (SO_REUSEPORT), so the API "
                   "uses N cores; needs a shared store and live = \"redis\" (default 1)")
    log_format_arg(p)


def cmd_serve(args: argparse.Namespace) -> int:
    with acting_as(SYSTEM_ACTING):  # requests act for their actors, the rest as the server
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from baseshift.core.app.logs import configure_logging, log_format

    configure_logging(log_format(args.log_format), verbose=not args.quiet, timestamps=True)
    settings = settings_from(args, workflows_dir=args.workflows, auth=args.auth)
    if _specific(args.host):  # `--host 192.0.2.7` answers requests to that address too
        settings = replace(settings, allowed_hosts=(*settings.allowed_hosts,
                                                    args.host.strip("[]")))
    if settings.auth == "none":
        if not _loopback(args.host):
            print(f"error: --auth none lets anyone who reaches {args.host}:{args.port} run "
                  "any command; it is only allowed on a loopback address (--host "
                  "127.0.0.1)", file=sys.stderr)
            return ExitCode.USAGE
        print("warning: authentication is off (--auth none): every local user and program "
              "can do anything on this server", file=sys.stderr, flush=True)
    if bool(args.certfile) != bool(args.keyfile):
        print("error: HTTPS needs both --certfile and --keyfile", file=sys.stderr)
        return ExitCode.USAGE
    if args.certfile:
        problem = _tls_problem(args.certfile, args.keyfile)
        if problem:
            print(f"error: cannot use {args.certfile} and {args.keyfile}: {problem}",
                  file=sys.stderr)
            return ExitCode.USAGE
    if args.processes < 1:
        print("error: --processes must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    if getattr(args, "serve_child", False):
        return _serve_child(args, settings)
    if args.processes > 1:
        from .processes import check_shareable, reuse_port_socket, supervise

        check_shareable(settings)
        asyncio.run(_preflight(settings))
        try:  # a port another program holds is one message here, not N failing children
            reuse_port_socket(args.host, args.port).close()
        except OSError as exc:
            print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
                  file=sys.stderr)
            return ExitCode.FAILED
        return supervise(args, args.processes)
    asyncio.run(_preflight(settings))
    return _serve_one(args, settings)


def child_main() -> int:
    """The entry point of one process of `serve --processes N` (processes.py starts it):
    `serve` with the parent's arguments, which arrive as JSON in ARGS_VAR."""
    import json
    import os

    from baseshift.core.errors import BaseShiftError

    from .processes import ARGS_VAR, stop_with_parent

    stop_with_parent()
    values = json.loads(os.environ.pop(ARGS_VAR))
    try:
        return cmd_serve(argparse.Namespace(**values))
    except BaseShiftError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return ExitCode.FAILED


def _serve_child(args: argparse.Namespace, settings: Settings) -> int:
    """One of the processes of `serve --processes N` (the supervisor checked the settings
    and opened the backends once): its own socket on the shared port, SO_REUSEPORT."""
    return _serve_one(args, settings, reuse_port=True)


def _serve_one(args: argparse.Namespace, settings: Settings, reuse_port: bool = False) -> int:
    from baseshift.core.app.application import BaseShift
    from baseshift.web.app import create_app

    scheme = "https" if args.certfile else "http"
    url = f"{scheme}://{_host(args.host)}:{args.port}/"
    bs = BaseShift(settings)
    bs.stash[LISTENER] = Listener(args.host, args.port, args.certfile or None)
    app = create_app(baseshift=bs, on_ready=lambda ready: _ready(ready, url))
    print(f"Base Shift is starting (workflows: {settings.workflows_dir}, "
          f"data: {settings.data_dir})", flush=True)
    try:
        config = hypercorn_config(args.host, args.port)
        if reuse_port:
            from .processes import reuse_port_socket

            # kept open by this frame while Hypercorn serves on its descriptor
            sock = reuse_port_socket(args.host, args.port)
            config.bind = [f"fd://{sock.fileno()}"]
        if args.certfile:
            config.certfile, config.keyfile = args.certfile, args.keyfile
        serve_forever(app, config)
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return ExitCode.FAILED
    print("stopped; runs that were executing resume when the server starts again",
          file=sys.stderr)
    return ExitCode.OK


async def _preflight(settings: Settings) -> None:
    """Open and close every configured backend once, so that a bad or unreachable URL is one
    clear error (raised to the command line) before Hypercorn starts, not a traceback from
    inside the server's startup."""
    from baseshift.core.app.application import BaseShift

    async with BaseShift(settings):
        pass


def hypercorn_config(host: str, port: int) -> Config:
    """How `baseshift serve` configures Hypercorn (the API benchmark uses it too): its
    messages go through Base Shift's log (core/app/logs.py), JSON or escaped console lines;
    the line per request is Base Shift's own (web/accesslog.py: it knows the route, the
    actor and the request id), so Hypercorn's access log is off."""
    import logging

    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{_host(host)}:{port}"]
    config.graceful_timeout = GRACEFUL_SECONDS
    config.accesslog = None
    config.errorlog = logging.getLogger("baseshift.server")
    return config


def serve_forever(app: ASGIApp, config: Config) -> None:
    """Serve until SIGINT or SIGTERM, on uvloop when it is installed (it roughly halves the
    event loop's share of each request), else on asyncio's own loop."""
    from hypercorn.asyncio import serve

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    run_async(main())


def _ready(bs: BaseShift, url: str) -> None:
    print(f"Base Shift is ready: open {url}  (Ctrl-C stops it)", flush=True)


def _tls_problem(certfile: str, keyfile: str) -> str | None:
    """Why the certificate and key cannot serve HTTPS (missing, unreadable, not a pair), or
    None: said before the server starts, not as a traceback from inside it."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except OSError as exc:  # ssl.SSLError is one
        return str(exc.strerror or exc)
    return None


def _loopback(host: str) -> bool:
    """Whether `host` (a name or address to bind) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _specific(host: str) -> bool:
    """Whether `host` is one address beyond loopback (not a wildcard)."""
    return host not in ("0.0.0.0", "::", "") and not _loopback(host)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@hookimpl
def register_commands() -> list[Command]:
    return [Command("serve", "serve the REST API and web UI for a folder of workflows",
                    _serve_args, cmd_serve)]
