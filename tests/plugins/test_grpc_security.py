"""The JobExecutor's protection, with real worker processes and a throwaway CA: TLS and the
bearer token let a job through, every other client is refused before anything runs, a worker
will not serve beyond loopback unprotected unless told to, and no token reaches its log."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.attempts import NotRetryable
from baseshift.core.errors import ConfigError, ExecutionError
from baseshift.core.protocols import JobContext
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.plugins.grpc.executor import GrpcExecutor
from baseshift.plugins.grpc.security import (
    TOKEN_ENV,
    ClientSecurity,
    ServerSecurity,
    is_loopback,
)
from tests.conftest import free_port, stop_process
from tests.tls_support import Pki, make_pki

pytestmark = pytest.mark.slow

TOKEN = "s3cret-Token-for-the-worker-0123456789"
WRONG = "not-the-Token-9876543210"
LIMIT = 60  # seconds; only to keep a broken test from hanging the suite
FLOW = """
workflow remote {
  version "1.0.0"
  job hello uses grpc {
    with { target: "TARGET", executor: "shell", with: { command: "echo [42]" } }
  }
}
"""


@contextmanager
def worker_process(folder: Path, *args: str, env: dict[str, str]) -> Iterator[Path]:
    """`baseshift worker ARGS` run in `folder` until it serves (its log is yielded), stopped
    afterwards."""
    log = folder / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "baseshift", "worker", *args],
                                cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "BASESHIFT_DATA_DIR": str(folder / "w"),
                                     **env})
    try:
        deadline = time.monotonic() + LIMIT
        while "gRPC JobExecutor serving" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield log
    finally:
        stop_process(proc)


@dataclass(frozen=True)
class Secured:
    """A worker process serving TLS and requiring the token, and its clients' files."""

    target: str
    pki: Pki
    other: Pki
    """Another CA, which did not sign the worker's certificate."""
    token_file: Path
    log: Path


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Secured]:
    """The worker takes its TLS files and token file from `[plugins.executor_grpc]` in its
    `baseshift.toml`."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    (tmp_path / "pki").mkdir()
    (tmp_path / "other").mkdir()
    pki, other = make_pki(tmp_path / "pki"), make_pki(tmp_path / "other")
    token_file = tmp_path / "grpc.token"
    token_file.write_text(TOKEN + "\n")
    (tmp_path / "baseshift.toml").write_text(
        f'[plugins.executor_grpc]\ncertfile = "{pki.cert}"\nkeyfile = "{pki.key}"\n'
        f'token_file = "{token_file}"\n')
    target = f"127.0.0.1:{free_port()}"
    with worker_process(tmp_path, "--grpc", target, env={}) as log:
        yield Secured(target, pki, other, token_file, log)


async def run_one(security: ClientSecurity, target: str, command: str) -> Any:
    executor = GrpcExecutor(security)
    config = {"target": target, "executor": "shell", "connect_timeout": 1,
              "with": {"command": command}}
    try:
        return await asyncio.wait_for(executor.execute(JobContext("r", "j", 1, config)), LIMIT)
    finally:
        await executor.aclose()


def assert_no_token_in(log: Path) -> None:
    text = log.read_text()
    assert TOKEN not in text and WRONG not in text, text


async def test_tls_and_the_token_run_a_shell_job_end_to_end(
        secured: Secured, tmp_path: Path) -> None:
    flow = tmp_path / "remote.bsw"
    flow.write_text(FLOW.replace("TARGET", secured.target))
    client = {"executor_grpc": {"ca_file": str(secured.pki.ca),
                                "token_file": str(secured.token_file)}}
    settings = Settings(store="memory", data_dir=tmp_path / "data", load_entrypoints=False,
                        extra=client)
    async with BaseShift(settings) as bs:
        run = await bs.engine.submit(bs.load_workflow(flow), {})
        record = await asyncio.wait_for(bs.engine.wait(run), LIMIT)
        snapshot = await bs.store.load_run(run)
    assert record.state is RunState.COMPLETED, record.error
    assert snapshot is not None and snapshot.jobs["hello"].output == [42]
    assert "gRPC JobExecutor on 127.0.0.1" in secured.log.read_text()
    assert "TLS, token required" in secured.log.read_text()
    assert_no_token_in(secured.log)


@pytest.mark.parametrize("token,refusal", [
    (WRONG, "refused the token: the token is wrong"),
    (None, "refused the call: no token was sent"),
])
async def test_a_call_without_the_right_token_is_refused_and_nothing_runs(
        secured: Secured, tmp_path: Path,
        token: str | None, refusal: str) -> None:
    marker = tmp_path / "ran"
    security = ClientSecurity(True, secured.pki.ca.read_bytes(), token)
    with pytest.raises(NotRetryable) as info:
        await run_one(security, secured.target, f"touch {marker}")
    assert info.value.message.startswith(f"JobExecutor at {secured.target} {refusal}; set "
                                         f"{TOKEN_ENV} ")
    assert not marker.exists()
    assert "gRPC JobExecutor refused /jobexecution.JobExecutor/ExecuteJob" \
        in secured.log.read_text()
    assert_no_token_in(secured.log)


async def test_a_plaintext_client_cannot_reach_a_tls_worker(
        secured: Secured, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ExecutionError) as info:
        await run_one(ClientSecurity(token=TOKEN), secured.target, f"touch {marker}")
    assert info.value.message.startswith(f"cannot reach JobExecutor at {secured.target}: ")
    assert not marker.exists()


async def test_a_client_trusting_another_ca_fails_with_the_tls_reason(
        secured: Secured, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    security = ClientSecurity(True, secured.other.ca.read_bytes(), TOKEN)
    with pytest.raises(ExecutionError) as info:
        await run_one(security, secured.target, f"touch {marker}")
    message = info.value.message
    assert message.startswith(f"cannot reach JobExecutor at {secured.target}: "), message
    assert "handshake" in message.lower(), message
    assert not isinstance(info.value, NotRetryable)  # a certificate may be fixed meanwhile
    assert not marker.exists()


# ----------------------------------------------------------- the worker command's rule


def pki_flags(pki: Pki) -> list[str]:
    return ["--grpc-certfile", str(pki.cert), "--grpc-keyfile", str(pki.key)]


@pytest.mark.parametrize("tls,env,missing", [
    (False, {}, "without TLS and a token"),
    (True, {}, "without a token"),
    (False, {TOKEN_ENV: TOKEN}, "without TLS"),
])
def test_a_worker_will_not_serve_beyond_loopback_unprotected(
        run_cli: Any, tmp_path: Path, tls: bool, env: dict[str, str], missing: str) -> None:
    address = f"0.0.0.0:{free_port()}"
    extra = pki_flags(make_pki(tmp_path)) if tls else []
    done = run_cli("worker", "--grpc", address, *extra, cwd=tmp_path,
                   env={TOKEN_ENV: "", **env})
    assert done.exit_code == 2, done
    assert f"error: refusing to serve gRPC on {address} {missing}: other machines can " \
           "reach it" in done.stderr
    assert "--grpc-insecure" in done.stderr
    assert "gRPC JobExecutor serving" not in done.stdout + done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_an_unreadable_certificate_is_a_usage_error(run_cli: Any, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    done = run_cli("worker", "--grpc", "127.0.0.1:1", "--grpc-certfile",
                   str(tmp_path / "nope.pem"), "--grpc-keyfile", str(pki.key), cwd=tmp_path)
    assert done.exit_code == 2, done
    assert f"error: cannot read the gRPC certfile {tmp_path / 'nope.pem'}: " in done.stderr


def test_grpc_insecure_serves_beyond_loopback_with_a_warning(tmp_path: Path) -> None:
    address = f"0.0.0.0:{free_port()}"
    with worker_process(tmp_path, "--grpc", address, "--grpc-insecure",
                        env={TOKEN_ENV: ""}) as log:
        text = log.read_text()
    assert f"warning: serving gRPC on {address} without TLS and a token (--grpc-insecure): " \
           "anyone reaching it can run any executor" in text


async def test_tls_flags_and_a_token_serve_beyond_loopback_without_a_warning(
        tmp_path: Path) -> None:
    pki, port = make_pki(tmp_path), free_port()
    marker = tmp_path / "ran"
    with worker_process(tmp_path, "--grpc", f"0.0.0.0:{port}", *pki_flags(pki),
                        env={TOKEN_ENV: TOKEN}) as log:
        security = ClientSecurity(True, pki.ca.read_bytes(), TOKEN)
        output = await run_one(security, f"127.0.0.1:{port}", f"touch {marker}; echo '[7]'")
        text = log.read_text()
    assert output.output == [7] and marker.exists()
    assert "warning" not in text and "TLS, token required" in text
    assert TOKEN not in log.read_text()


# ----------------------------------------------------------- configuration


def test_security_comes_from_configuration(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki(tmp_path)
    (tmp_path / "token").write_text(f"  {TOKEN}\n")
    table = {"ca_file": str(pki.ca), "certfile": str(pki.cert), "keyfile": str(pki.key),
             "token_file": str(tmp_path / "token")}
    settings = Settings(extra={"executor_grpc": table})
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    client, server = ClientSecurity.from_settings(settings), ServerSecurity.from_settings(settings)
    assert client.tls and client.metadata() == (("authorization", f"Bearer {TOKEN}"),)
    assert server.tls and server.token == TOKEN
    assert TOKEN not in repr(client) + repr(server)
    monkeypatch.setenv(TOKEN_ENV, WRONG)
    assert ClientSecurity.from_settings(settings).token == WRONG  # the variable wins
    assert not ClientSecurity.from_settings(Settings()).tls


@pytest.mark.parametrize("table,message", [
    ({"certfile": "cert.pem"}, "TLS needs both a certificate and its key"),
    ({"ca_file": "/nonexistent/ca.pem"}, "cannot read the gRPC ca_file /nonexistent/ca.pem"),
    ({"token_file": "EMPTY"}, "the gRPC token in EMPTY is empty"),
])
def test_bad_security_settings_name_the_culprit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: dict[str, str],
        message: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    (tmp_path / "EMPTY").write_text("\n")
    settings = Settings(extra={"executor_grpc": table})
    with pytest.raises(ConfigError, match=message):
        ClientSecurity.from_settings(settings)
        ServerSecurity.from_settings(settings)


@pytest.mark.parametrize("address,loopback", [
    ("127.0.0.1:50051", True), ("127.8.0.1:1", True), ("localhost:50051", True),
    ("[::1]:50051", True), ("unix:/run/worker.sock", True),
    ("0.0.0.0:50051", False), ("[::]:50051", False), (":50051", False),
    ("10.0.0.5:50051", False), ("worker.internal:50051", False),
])
def test_only_loopback_addresses_may_be_served_unprotected(address: str,
                                                            loopback: bool) -> None:
    assert is_loopback(address) is loopback
    assert (ServerSecurity().lacks(address) is None) is loopback
