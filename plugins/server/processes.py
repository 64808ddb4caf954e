"""`baseshift serve --processes N`: N server processes on one port of one machine.

The parent checks the settings, opens the backends once (the SQLite schema is made before
any child starts), then starts N children (`python -c`, serve.py's `child_main`; the
parsed arguments travel as JSON in an environment variable) and supervises them. Each child
binds its own socket with SO_REUSEPORT, so the kernel spreads new connections over them. A
child that dies is started again, at most RESTARTS times in RESTART_WINDOW seconds (then
the parent stops everything and fails); SIGINT or SIGTERM to the parent is passed on to
every child, which finishes its open requests as a single server does.

The children count their metrics together (plugins/metrics/fleet.py): the supervisor makes a
private directory (mode 0700) for prometheus_client's multiprocess files, names it in each
child's environment, clears a dead child's live gauges (`mark_process_dead`) and removes the
directory when it stops, so `/metrics` answers the fleet's counts whichever child answers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from types import FrameType
from typing import TYPE_CHECKING

from baseshift.core.command import ExitCode
from baseshift.core.errors import ConfigError

if TYPE_CHECKING:
    from baseshift.core.settings import Settings

ARGS_VAR = "BASESHIFT_SERVE_CHILD_ARGS"
"""The environment variable carrying a child's arguments (JSON); internal."""
PARENT_VAR = "BASESHIFT_SERVE_PARENT"
"""The environment variable naming the supervisor's pid; internal."""
METRICS_VAR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's variable: where the children write their metrics."""
RESTARTS = 5
RESTART_WINDOW = 60.0
STOP_SECONDS = 15.0
"""How long stopping children get before they are killed (they take GRACEFUL_SECONDS)."""
_POLL = 0.2


def check_shareable(settings: Settings) -> None:
    """Refuse settings under which N processes would not see one state: a store or template
    store in memory is one per process, and `live = "local"` keeps live status in the process
    executing the run, so an event stream served by another process would miss its events."""
    for name in ("store", "templates"):
        if getattr(settings, name) == "memory":
            raise ConfigError(f"Config '{name}' is 'memory', which each process of "
                              "--processes keeps to itself.",
                              hint=f"use {name} = \"sqlite\" or \"postgres\", or --processes 1")
    if settings.live != "redis":
        raise ConfigError(f"Config 'live' is {settings.live!r}: with --processes above 1 an "
                          "event stream served by one process would miss the runs another "
                          "executes.",
                          hint="set live = \"redis\" (BASESHIFT_LIVE=redis) and redis_url, "
                          "or use --processes 1")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT (and SO_REUSEADDR), for Hypercorn's
    `fd://` bind; the sibling processes bind the same port the same way."""
    family, type_, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def _child_args(args: argparse.Namespace) -> str:
    plain = {k: v for k, v in vars(args).items()
             if isinstance(v, str | int | float | bool | type(None))}
    return json.dumps({**plain, "processes": 1, "serve_child": True})


def _start(args: argparse.Namespace, metrics: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, ARGS_VAR: _child_args(args), PARENT_VAR: str(os.getpid()),
           METRICS_VAR: metrics}
    return subprocess.Popen(
        [sys.executable, "-c",
         "from baseshift.plugins.server.serve import child_main; "
         "raise SystemExit(child_main())"], env=env)


def supervise(args: argparse.Namespace, count: int) -> int:
    """Start `count` children and keep them running until SIGINT or SIGTERM."""
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    restarts: deque[float] = deque()
    metrics = tempfile.mkdtemp(prefix="baseshift-metrics-")  # 0700: the fleet's only
    children = [_start(args, metrics) for _ in range(count)]
    print(f"Base Shift serves from {count} processes (pids "
          f"{', '.join(str(c.pid) for c in children)}) on port {args.port}",
          file=sys.stderr, flush=True)
    failed = False
    try:
        while not stopping:
            time.sleep(_POLL)
            for i, child in enumerate(children):
                code = child.poll()
                if code is None or stopping:
                    continue
                _forget_gauges(child.pid, metrics)
                now = time.monotonic()
                while restarts and now - restarts[0] > RESTART_WINDOW:
                    restarts.popleft()
                if len(restarts) >= RESTARTS:
                    print(f"error: server process {child.pid} exited ({code}) and "
                          f"{RESTARTS} restarts in {RESTART_WINDOW:.0f}s is the limit; "
                          "stopping", file=sys.stderr, flush=True)
                    failed = True
                    stopping.append(signal.SIGTERM)
                    break
                restarts.append(now)
                children[i] = _start(args, metrics)
                print(f"warning: server process {child.pid} exited ({code}); started "
                      f"{children[i].pid}", file=sys.stderr, flush=True)
    finally:
        _stop_all(children)
        shutil.rmtree(metrics, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ExitCode.FAILED if failed else ExitCode.OK


def _forget_gauges(pid: int, metrics: str) -> None:
    """A child exited: its `live*` gauges (attempts in flight, jobs ready) no longer count;
    its counters and histograms do (what it counted happened)."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, metrics)  # type: ignore[no-untyped-call]


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def stop_with_parent() -> None:
    """In a child: be sent SIGTERM when the supervisor dies, however it dies (Linux's
    PR_SET_PDEATHSIG), so a killed supervisor leaves no server behind; and stop at once if
    it died before this call."""
    import ctypes

    parent = int(os.environ.pop(PARENT_VAR, "0"))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor's stop is the only one
        return
    if parent and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
