"""`baseshift serve --certfile --keyfile`: HTTPS with a certificate from a throwaway CA,
HSTS, session cookies marked Secure; a bad certificate is a clear error before serving."""
from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, stop_process
from tests.tls_support import make_pki

pytestmark = pytest.mark.slow


def test_https_with_hsts_and_secure_cookies(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    (tmp_path / "flows").mkdir()
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "BASESHIFT_AUTH"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseshift", "serve", "--port", str(port), "--workflows",
         str(tmp_path / "flows"), "--data-dir", str(tmp_path / "data"),
         "--certfile", str(pki.cert), "--keyfile", str(pki.key)],
        stdout=log, stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"})
    url = f"https://127.0.0.1:{port}"
    try:
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        with httpx.Client(verify=trusted, base_url=url, timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                try:
                    keys = client.get("/.well-known/jwks.json")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert keys.status_code == 200
            assert keys.headers["strict-transport-security"] == "max-age=31536000"
            page = client.post("/ui/login", data={"username": "nobody", "password": "x"})
            assert page.status_code == 401  # the sign-in page, again, with the error
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served on that port
            httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=5)
        with pytest.raises(httpx.ConnectError):  # an unknown CA is refused by the client
            httpx.get(url + "/.well-known/jwks.json", timeout=5)
    finally:
        stop_process(proc)
        log.close()
    assert f"ready: open https://127.0.0.1:{port}/" in (tmp_path / "server.log").read_text()


def test_session_cookies_are_secure_over_https(make_client: Any) -> None:
    """Cookies set on an https request carry Secure (and never without TLS)."""
    import asyncio

    from baseshift.core.access import Grant
    from baseshift.plugins.auth.state import AUTH

    async def sign_in(scheme: str) -> list[str]:
        async with make_client(role=None) as (bs, client):
            await bs.stash[AUTH].accounts.add_user("ann", "correct horse battery staple",
                                                    [Grant("viewer")])
            answer = await client.post(f"{scheme}://localhost/ui/login", data={
                "username": "ann", "password": "correct horse battery staple"})
            assert answer.status_code == 303, answer.text
            return answer.headers.get_list("set-cookie")

    secure = asyncio.run(sign_in("https"))
    plain = asyncio.run(sign_in("http"))
    assert len(secure) == 2 and all("Secure" in c and "HttpOnly" in c for c in secure)
    assert all("SameSite=Lax" in c for c in secure)
    assert not any("Secure" in c for c in plain)


def test_a_certificate_that_does_not_load_is_a_clear_error(run_cli: Any,
                                                           tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    (tmp_path / "bad.pem").write_text("not a certificate")
    missing_key = run_cli("serve", "--certfile", str(pki.cert))
    assert missing_key.exit_code == 2 and "--keyfile" in missing_key.stderr
    bad = run_cli("serve", "--certfile", str(tmp_path / "bad.pem"), "--keyfile", str(pki.key))
    assert bad.exit_code == 2 and "cannot use" in bad.stderr
    assert "Traceback" not in bad.stderr


def _served_report(tmp_path: Path, tls: Any | None) -> dict[str, Any]:
    """The compliance report of a `baseshift serve` process (auth off on loopback, so no
    credentials are needed), with HTTPS when `tls` (a Pki) is given."""
    (tmp_path / "flows").mkdir(exist_ok=True)
    port = free_port()
    flags = [] if tls is None else ["--certfile", str(tls.cert), "--keyfile", str(tls.key)]
    log_path = tmp_path / f"server-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseshift", "serve", "--port", str(port), "--workflows",
         str(tmp_path / "flows"), "--data-dir", str(tmp_path / "data"), "--auth", "none",
         *flags], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    scheme = "http" if tls is None else "https"
    verify: Any = True if tls is None else ssl.create_default_context(cafile=str(tls.ca))
    try:
        with httpx.Client(verify=verify, base_url=f"{scheme}://127.0.0.1:{port}",
                          timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                try:
                    answer = client.get("/api/v1/compliance/report")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body
    finally:
        stop_process(proc)
        log.close()


def test_the_compliance_report_sees_how_serve_listens(tmp_path: Path) -> None:
    """`serve --certfile --keyfile` makes the TLS control implemented, plain `serve` pending,
    and the transport frameworks' counts follow."""
    pki = make_pki(tmp_path)
    https = _served_report(tmp_path, pki)
    plain = _served_report(tmp_path, None)
    tls = {c["id"]: c for c in https["controls"]}["server.tls"]
    clear = {c["id"]: c for c in plain["controls"]}["server.tls"]
    assert tls["status"] == "implemented" and clear["status"] == "pending"
    assert "serving HTTPS on 127.0.0.1:" in tls["evidence"] and str(pki.cert) in tls["evidence"]
    assert "Strict-Transport-Security: max-age=31536000" in tls["evidence"]
    assert clear["evidence"].startswith("serving plain HTTP on 127.0.0.1:")
    soc2 = (https["compliance_status"]["SOC 2"], plain["compliance_status"]["SOC 2"])
    assert soc2[0]["controls_implemented"] == soc2[1]["controls_implemented"] + 1
    assert soc2[0]["controls_pending"] == soc2[1]["controls_pending"] - 1
