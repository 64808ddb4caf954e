"""The load balancer plugin against a real `nginx -t`: strict server addresses (the values
are spliced into the NGINX configuration), the configuration written, checked, rolled back
when NGINX rejects it, the registry, the audit entries, and the plugin idle unless
configured."""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.errors import ConfigError, InputError
from baseshift.core.settings import Settings
from baseshift.plugins.loadbalancer.nginx import Server, render
from baseshift.plugins.loadbalancer.settings import options_of, parse_address

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def lb_extra(tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {"loadbalancer": {"nginx": NGINX, "prefix": str(tmp_path / "nginx"),
                             "listen": "127.0.0.1:18080", "health_interval": 0.2, **more}}


GOOD = {"127.0.0.1:8001": "127.0.0.1:8001", "LocalHost:80": "localhost:80",
        "api-1.example.com:65535": "api-1.example.com:65535", "[::1]:8000": "[::1]:8000",
        "[0:0::1]:8000": "[::1]:8000", "10.0.0.7:1": "10.0.0.7:1"}

ATTACKS = [
    "127.0.0.1:8001; include /etc/passwd",
    "127.0.0.1:8001;",
    "127.0.0.1:8001 backup",
    "127.0.0.1:8001\n}\nserver { listen 9999; }",
    "127.0.0.1:8001}",
    "{127.0.0.1:8001",
    "evil.com:80 weight=100",
    "127.0.0.1:8001#",
    "'127.0.0.1:8001'",
    '"127.0.0.1:8001"',
    "$host:80",
    "unix:/tmp/sock",
    "127.0.0.1",
    "127.0.0.1:",
    ":8001",
    "127.0.0.1:0",
    "127.0.0.1:65536",
    "127.0.0.1:+80",
    "127.0.0.1:８０",
    "ex\u0430mple.com:80",
    "-bad.com:80",
    "bad-.com:80",
    "a..b:80",
    "999.1.1.1:80",
    "[::1%eth0]:80",
    "[zz::1]:80",
    "127.0.0.1:8001\r",
    "127.0.0.1:8001\x00",
    "a" * 64 + ".com:80",
    "",
]


@pytest.mark.parametrize("given,normal", GOOD.items())
def test_addresses_in_their_normal_form(given: str, normal: str) -> None:
    assert parse_address(given) == normal


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_address_that_could_inject_nginx_syntax_is_refused(attack: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_address(attack)
    assert caught.value.details == {"field": "address"}


@pytest.mark.parametrize("value", [8001, None, ["127.0.0.1:80"], {"a": 1}])
def test_an_address_must_be_a_string(value: Any) -> None:
    with pytest.raises(InputError):
        parse_address(value)


@pytest.mark.parametrize("key,value", [
    ("upstream", "base shift"), ("upstream", "x;y"), ("listen", "0.0.0.0:80; foo"),
    ("prefix", "/tmp/a b"), ("tls_cert", "/tmp/c;rt"), ("access_log", "/tmp/x{}")])
def test_options_written_into_the_configuration_are_validated(tmp_path: Path, key: str,
                                                              value: str) -> None:
    settings = Settings(extra={"loadbalancer": {key: value}}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match=key):
        options_of(settings)


def test_tls_needs_a_certificate_and_a_key(tmp_path: Path) -> None:
    settings = Settings(extra={"loadbalancer": {"tls_cert": "/tmp/c.pem"}},
                             data_dir=tmp_path)
    with pytest.raises(ConfigError, match="tls_key"):
        options_of(settings)


def test_the_rendered_configuration_holds_only_the_validated_servers(tmp_path: Path) -> None:
    settings = Settings(extra=lb_extra(tmp_path), data_dir=tmp_path)
    text = render(options_of(settings), [Server("127.0.0.1:8001", 3), Server("[::1]:8002")])
    assert "server 127.0.0.1:8001 weight=3 max_fails=1 fail_timeout=10s;" in text
    assert "server [::1]:8002 weight=1 max_fails=1 fail_timeout=10s;" in text
    assert "proxy_pass http://baseshift;" in text
    assert "ssl" not in text.replace("ssl_", "")
    empty = render(options_of(settings), [])
    assert "upstream baseshift" not in empty and "proxy_pass" not in empty
    assert "return 503;" in empty


async def test_the_plugin_is_idle_unless_configured(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        answer = await client.get("/api/v1/load_balancer/status")
        assert answer.status_code == 404
        assert "loadbalancer:admin" in bs.hooks.permissions()


async def test_add_and_remove_servers(make_client: Callable[..., Any], tmp_path: Path) -> None:
    async with make_client(store="sqlite", extra=lb_extra(tmp_path)) as (bs, client):
        config = tmp_path / "nginx" / "nginx.conf"
        assert "return 503;" in config.read_text()  # written at start: NGINX can start on it
        added = await client.post("/api/v1/load_balancer/add_server",
                                  json={"address": "127.0.0.1:8001", "weight": 2})
        assert added.status_code == 200, added.text
        assert added.json() == {"address": "127.0.0.1:8001", "weight": 2, "reloaded": False,
                                "servers": [{"address": "127.0.0.1:8001", "weight": 2}]}
        await client.post("/api/v1/load_balancer/add_server", json={"address": "LOCALHOST:9"})
        assert "server localhost:9 weight=1" in config.read_text()
        status = (await client.get("/api/v1/load_balancer/status")).json()
        assert [(s["address"], s["up"]) for s in status["servers"]] == [
            ("127.0.0.1:8001", False), ("localhost:9", False)]
        assert status["nginx"]["running"] is False
        assert status["nginx"]["checksum"] == hashlib.sha256(config.read_bytes()).hexdigest()
        assert status["nginx"]["reloaded_at"] is None

        removed = await client.post("/api/v1/load_balancer/remove_server",
                                    json={"address": "127.0.0.1:8001"})
        assert removed.status_code == 200, removed.text
        assert removed.json()["servers"] == [{"address": "localhost:9", "weight": 1}]
        assert "8001" not in config.read_text()
        again = await client.post("/api/v1/load_balancer/remove_server",
                                  json={"address": "127.0.0.1:8001"})
        assert again.status_code == 404
        trail = [r.entry.action for r in await bs.store.audit_records(0, 1000)]
        assert [a for a in trail if a.startswith("loadbalancer.")] == [
            "loadbalancer.add_server", "loadbalancer.add_server", "loadbalancer.remove_server"]
    assert (tmp_path / "data" / "loadbalancer.json").is_file()  # no shared documents: a file


@pytest.mark.parametrize("attack", ATTACKS[:8])
async def test_an_injection_attempt_changes_nothing(make_client: Callable[..., Any],
                                                    tmp_path: Path, attack: str) -> None:
    async with make_client(extra=lb_extra(tmp_path)) as (bs, client):
        config = tmp_path / "nginx" / "nginx.conf"
        before = config.read_bytes()
        answer = await client.post("/api/v1/load_balancer/add_server", json={"address": attack})
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "run.bad-input"
        assert config.read_bytes() == before


@pytest.mark.parametrize("body", [{"address": "127.0.0.1:1", "weight": 0},
                                  {"address": "127.0.0.1:1", "weight": True},
                                  {"address": "127.0.0.1:1", "weight": "2"},
                                  {"address": "127.0.0.1:1", "backup": True}, {}, []])
async def test_bad_bodies_are_refused(make_client: Callable[..., Any], tmp_path: Path,
                                      body: Any) -> None:
    async with make_client(extra=lb_extra(tmp_path)) as (bs, client):
        answer = await client.post("/api/v1/load_balancer/add_server", json=body)
        assert answer.status_code == 422, answer.text


async def test_a_configuration_nginx_rejects_is_rolled_back(make_client: Callable[..., Any],
                                                             tmp_path: Path) -> None:
    """A hostname that does not resolve passes the address check but fails `nginx -t`
    ("host not found in upstream"): 422 with NGINX's message, the previous file back, the
    registry unchanged."""
    async with make_client(extra=lb_extra(tmp_path)) as (bs, client):
        config = tmp_path / "nginx" / "nginx.conf"
        ok = await client.post("/api/v1/load_balancer/add_server",
                               json={"address": "127.0.0.1:8001"})
        assert ok.status_code == 200, ok.text
        before = config.read_bytes()
        answer = await client.post("/api/v1/load_balancer/add_server",
                                   json={"address": "no-such-host.invalid:80"})
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["code"] == "loadbalancer.nginx-rejected"
        assert "host not found" in problem["detail"]
        assert config.read_bytes() == before
        status = (await client.get("/api/v1/load_balancer/status")).json()
        assert [s["address"] for s in status["servers"]] == ["127.0.0.1:8001"]
        last = (await bs.store.audit_records(0, 1000))[-1].entry
        assert (last.action, last.resource, last.outcome) == (
            "loadbalancer.add_server", "loadbalancer:no-such-host.invalid:80", "failure")
        assert "host not found" in last.detail["nginx"]


@pytest.mark.parametrize("answer,up", [(200, True), (204, True), (503, False), (404, True),
                                       (401, True), (None, False)])
async def test_health_probe_of_the_ready_route(answer: int | None, up: bool) -> None:
    """`/health/ready` decides when served (2xx up, 503 down); a server without it is up
    when it answers HTTP at all; no answer is down."""
    import httpx

    from baseshift.plugins.loadbalancer.health import probe

    def reply(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/health/ready"
        if answer is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(answer)

    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as client:
        health = await probe(client, "127.0.0.1:8001")
    assert health.up is up, health.detail
