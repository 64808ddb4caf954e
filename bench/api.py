"""HTTP API throughput and latency: run status reads and run starts against a real server.

    python bench/api.py                         # both scenarios, 5 s each, 8 connections
    python bench/api.py --seconds 3 --concurrency 16 --store memory
    python bench/api.py --profile server.prof   # cProfile of the server, top functions printed
    python bench/api.py --processes 2           # `baseshift serve --processes 2` (Redis live)

Starts the server (the ASGI app under Hypercorn, configured as `baseshift serve` does) on a
free loopback port, with a temporary data dir and a workflows folder holding one no-op
workflow, and waits until it answers. A separate load process then opens N keep-alive
connections (a minimal HTTP/1.1 client on asyncio streams, cheap enough not to be the
bottleneck) and drives `GET /api/v1/workflows/{id}/status` over a few finished runs, then
`POST /api/v1/workflows`. Prints one JSON line per scenario: requests/s, p50/p99 latency in
ms, errors (any status other than the expected one, or a broken connection).

Every request carries an API token of an `operator` (made in the data dir before the server
starts), so the figures include authentication and authorization as users meet them; the
memory store cannot be prepared that way and runs with authentication off (`"auth"` in
the JSON says which).

With `--processes N` (N > 1) the server is `baseshift serve --processes N` itself (SQLite,
`live = "redis"` on BASESHIFT_REDIS_URL, default redis://127.0.0.1:6379/0, under a private
key prefix); the CPU figures then add up the supervisor and its children.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

NOOP_WORKFLOW = """
workflow noop {
  version "1.0.0"
  job only uses python { with { function: "bench_steps:noop" } }
}
"""
NOOP_STEPS = "async def noop() -> None:\n    return None\n"
START_BODY = json.dumps({"workflow": "noop", "inputs": {}}).encode()


# ------------------------------------------------------------------ the server process


def serve(port: int, workflows: str, data: str, store: str, profile: str | None) -> None:
    """The server child: create_app + Hypercorn, as `baseshift serve`; SIGTERM stops it."""
    from baseshift.core.settings import Settings
    from baseshift.plugins.server.serve import hypercorn_config, serve_forever
    from baseshift.web.app import create_app

    app = create_app(Settings.from_env(data_dir=Path(data), workflows_dir=Path(workflows),
                                       store=store))
    config = hypercorn_config("127.0.0.1", port)
    if profile is None:
        serve_forever(app, config)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(serve_forever, app, config)
    profiler.dump_stats(profile)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(root: Path, store: str, profile: str | None,
                 token: str | None, processes: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    workflows = root / "workflows"
    workflows.mkdir()
    (workflows / "noop.bsw").write_text(NOOP_WORKFLOW)
    (workflows / "bench_steps.py").write_text(NOOP_STEPS)
    port = free_port()
    command = [sys.executable, str(HERE), "--serve-child", str(port), str(workflows),
               str(root / "data"), store, profile or ""]
    env = {**os.environ, "BASESHIFT_AUTH": "none" if token is None else "on"}
    if processes > 1:
        (root / "baseshift.toml").write_text(
            f'[plugins.live_redis]\nprefix = "bench-api-{os.getpid()}:"\n')
        command = [sys.executable, "-m", "baseshift", "serve", "--port", str(port),
                   "--processes", str(processes), "--quiet"]
        env |= {"BASESHIFT_DATA_DIR": str(root / "data"), "BASESHIFT_WORKFLOWS": str(workflows),
                "BASESHIFT_STORE": store, "BASESHIFT_LIVE": "redis",
                "BASESHIFT_REDIS_URL": os.environ.get("BASESHIFT_REDIS_URL",
                                                      "redis://127.0.0.1:6379/0")}
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env, cwd=root)
        asyncio.run(wait_ready(port, server))
        wait_all_answer(port, processes)
        return server, port
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    asyncio.run(wait_ready(port, server))
    return server, port


async def make_token(data: Path, store: str) -> str | None:
    """An operator's API token in the server's store (None for the memory store, which
    starts empty in the server's own process)."""
    if store == "memory":
        return None
    from baseshift.core.access import Grant
    from baseshift.core.app.application import BaseShift
    from baseshift.core.settings import Settings
    from baseshift.plugins.auth.state import AUTH

    async with BaseShift(Settings.from_env(data_dir=data, store=store)) as bs:
        state = bs.stash[AUTH]
        await state.accounts.add_user("bench", None, [Grant("operator")])
        _, secret = await state.logins.create_api_token("bench", "bench",
                                                        [Grant("operator")], None)
        return secret


def wait_all_answer(port: int, processes: int) -> None:
    """Wait until `processes` distinct processes (instance ids) answer /health/live (on fresh
    connections), so no child is still starting when the load begins."""
    import urllib.request

    instances: set[str] = set()
    deadline = time.monotonic() + 60
    while len(instances) < processes:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(instances)} of {processes} server processes answered")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live") as answer:
            instances.add(json.load(answer)["instance"])


async def wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            conn = await Connection.open(port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        status, _ = await conn.request(b"GET", "/.well-known/jwks.json")
        conn.close()
        if status == 200:
            return
    raise SystemExit("the server did not answer within 60 s")


# ------------------------------------------------------------------ the load process


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read status and body."""

    credentials = b""
    """The Authorization header line every request sends (set once per process)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.closing = False
        """The last response said `Connection: close` (the server's limit of requests per
        connection): open a new one, as any HTTP client does."""

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: bytes, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + self.credentials + b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n")
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
            elif line.lower().replace(b" ", b"") == b"connection:close":
                self.closing = True
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _worker(port: int, scenario: str, targets: list[str], until: float,
                  latencies: list[float], errors: list[str]) -> None:
    conn = await Connection.open(port)
    i = 0
    try:
        while time.perf_counter() < until:
            if scenario == "status":
                call = conn.request(b"GET", f"/api/v1/workflows/{targets[i % len(targets)]}"
                                            "/status")
                expected = 200
            else:
                call = conn.request(b"POST", "/api/v1/workflows", START_BODY)
                expected = 201
            started = time.perf_counter()
            status, body = await call
            latencies.append(time.perf_counter() - started)
            if status != expected:
                errors.append(f"{status} {body[:200]!r}")
            if conn.closing:
                conn.close()
                conn = await Connection.open(port)
            i += 1
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(f"connection: {exc!r}")
    finally:
        conn.close()


async def drive(port: int, scenario: str, seconds: float, concurrency: int,
                targets: list[str]) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_worker(port, scenario, targets, until, latencies, errors)
                           for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "scenario": scenario, "seconds": round(elapsed, 2), "concurrency": concurrency,
        "requests": n, "requests_per_second": round(n / elapsed, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 2) if n else None,
        "p99_ms": round(latencies[min(n - 1, (n * 99) // 100)] * 1000, 2) if n else None,
        "errors": len(errors), "first_error": errors[0] if errors else None,
    }


def authorize(token: str | None) -> None:
    Connection.credentials = b"" if token is None else \
        b"Authorization: Bearer " + token.encode() + b"\r\n"


def load(port: int, scenario: str, seconds: float, concurrency: int,
         targets: list[str], token: str | None) -> dict[str, Any]:
    """Entry point of the load process."""
    authorize(token)
    return asyncio.run(drive(port, scenario, seconds, concurrency, targets))


async def seed_runs(port: int, count: int) -> list[str]:
    """Start `count` runs and wait until each is finished: status reads then read stable runs."""
    conn = await Connection.open(port)
    ids = []
    for _ in range(count):
        status, body = await conn.request(b"POST", "/api/v1/workflows", START_BODY)
        if status != 201:
            raise SystemExit(f"starting a run failed: {status} {body[:300]!r}")
        ids.append(json.loads(body)["workflow_id"])
    for run_id in ids:
        while True:
            _, body = await conn.request(b"GET", f"/api/v1/workflows/{run_id}/status")
            if json.loads(body)["state"] in ("COMPLETED", "FAILED", "CANCELLED"):
                break
            await asyncio.sleep(0.02)
    conn.close()
    return ids


# ------------------------------------------------------------------ main


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time a process and its children have used (Linux /proc), to report
    the server's cost per request, which stays meaningful when other processes share the
    cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    user, system = int(fields[11]) / tick, int(fields[12]) / tick
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        more = cpu_seconds(int(child))
        user, system = user + more[0], system + more[1]
    return user, system


def cpu_per_request(before: tuple[float, float], after: tuple[float, float],
                    requests: int) -> dict[str, float | None]:
    per = 1000 / requests if requests else None
    user, system = after[0] - before[0], after[1] - before[1]
    return {"server_cpu_ms_per_request": per and round((user + system) * per, 3),
            "server_user_ms_per_request": per and round(user * per, 3),
            "server_system_ms_per_request": per and round(system * per, 3)}


def print_profile(path: str, top: int = 25) -> None:
    import pstats

    stats = pstats.Stats(path, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(top)


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        token = asyncio.run(make_token(Path(tmp) / "data", args.store))
        authorize(token)
        server, port = start_server(Path(tmp), args.store, args.profile, token,
                                    args.processes)
        try:
            targets = asyncio.run(seed_runs(port, 20))
            spawn = multiprocessing.get_context("spawn")
            with spawn.Pool(1) as pool:
                for scenario in args.scenario:
                    cpu = cpu_seconds(server.pid)
                    result = pool.apply(load, (port, scenario, args.seconds, args.concurrency,
                                               targets, token))
                    result |= cpu_per_request(cpu, cpu_seconds(server.pid), result["requests"])
                    print(json.dumps({"benchmark": "api", "store": args.store,
                                      "processes": args.processes,
                                      "auth": "none" if token is None else "api-token",
                                      **result}),
                          flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    if args.profile:
        print_profile(args.profile)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-child":
        port, workflows, data, store, profile = sys.argv[2:7]
        return serve(int(port), workflows, data, store, profile or None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario (default 5)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="open keep-alive connections (default 8)")
    parser.add_argument("--scenario", nargs="+", choices=("status", "start"),
                        default=["status", "start"], help="what to drive (default both)")
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--json", action="store_true",
                        help="print JSON lines (the default and only format)")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the server into FILE and print its top functions")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="serve with `baseshift serve --processes N` (N > 1: SQLite and "
                        "Redis live status; no --profile)")
    args = parser.parse_args()
    if args.processes > 1 and (args.store == "memory" or args.profile):
        parser.error("--processes above 1 needs --store sqlite and no --profile")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    run(args)


if __name__ == "__main__":
    main()
