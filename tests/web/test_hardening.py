"""HTTP hardening: the Host allow-list (DNS rebinding reaches nothing), security headers on
every response, and pages the Content-Security-Policy lets run (no inline code or style)."""
from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from starlette.types import Message, Scope

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import ConfigError
from baseshift.core.settings import Settings
from baseshift.web.app import create_app
from baseshift.web.hosts import AllowedHosts, host_name
from baseshift.web.render import HTMX_JS, builtin_static

REBIND = "rebind.attacker.example"

POLICY = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'",
    "img-src": "'self' data:", "connect-src": "'self'", "frame-ancestors": "'none'",
    "base-uri": "'none'", "form-action": "'self'", "object-src": "'none'",
}


async def _count_runs(client: httpx.AsyncClient) -> int:
    return len((await client.get("/api/v1/workflows")).json()["runs"])


# --------------------------------------------------------------------------- Host allow-list


async def test_a_dns_rebinding_page_reaches_nothing(make_client: Any) -> None:
    """The attacker's name resolves to this server: the browser sends it as Host, and as
    Origin, so the request looks same-origin. It is refused before any view runs."""
    rebound = {"host": REBIND, "origin": f"http://{REBIND}"}
    async with make_client() as (_, client):
        api = await client.post("/api/v1/workflows", json={"workflow": "hello"},
                                headers=rebound)
        form = await client.post("/ui/workflows/hello/runs", data={"name": "x"},
                                 headers=rebound)
        read = await client.get("/api/v1/workflows", headers={"host": REBIND})
        page = await client.get("/ui/workflows", headers={"host": f"{REBIND}:8000"})
        assert await _count_runs(client) == 0
    for answer in (api, form, read, page):
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["code"] == "request.host" and REBIND in body["detail"]
        assert "allowed_hosts" in body["hint"] and f"BASESHIFT_ALLOWED_HOSTS={REBIND}" in \
            body["hint"]


async def test_loopback_names_are_allowed_on_any_port(make_client: Any) -> None:
    async with make_client() as (_, client):
        for host in ("localhost", "LocalHost:8080", "127.0.0.1:5000", "[::1]", "[::1]:9000",
                     "localhost."):
            answer = await client.get("/api/v1/workflows", headers={"host": host})
            assert answer.status_code == 200, host


async def test_configured_names_and_domains_are_allowed_and_nothing_else(
        make_client: Any) -> None:
    async with make_client(allowed_hosts=("ci.example.com", ".example.org", "10.0.0.5",
                                          "fd00::1")) as (_, client):
        for host, status in (("ci.example.com", 200), ("CI.example.com:443", 200),
                             ("example.org", 200), ("a.b.example.org:8080", 200),
                             ("10.0.0.5:8080", 200), ("[fd00:0::1]", 200),
                             ("localhost:8000", 200),
                             ("other.example.com", 400), ("badexample.org", 400),
                             ("example.org.attacker.example", 400),
                             ("ci.example.com.attacker.example", 400), ("10.0.0.6", 400)):
            answer = await client.get("/api/v1/workflows", headers={"host": host})
            assert answer.status_code == status, host


@pytest.mark.parametrize(("header", "name"), [
    ("LocalHost:8080", "localhost"), ("example.com.", "example.com"), ("[::1]:9000", "[::1]"),
    ("[0:0:0:0:0:0:0:1]", "[::1]"), ("10.0.0.5:80", "10.0.0.5"), ("", None), ("a b", None),
    ("evil.example/@localhost", None), ("user@localhost", None), ("localhost:80:80", None),
    ("[nothex]", None), ("::1", None), ("localhost:port", None),
])
def test_host_name_is_the_name_without_its_port_or_none(header: str, name: str | None) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize("entry", ["http://ci.example.com", "*", "ci.example.com/x",
                                   ".[::1]", ""])
async def test_a_bad_allowed_hosts_entry_stops_the_start_naming_it(
        make_client: Any, entry: str) -> None:
    with pytest.raises(ConfigError, match="allowed_hosts") as raised:
        async with make_client(allowed_hosts=("ok.example", entry)):
            pass
    assert repr(entry) in str(raised.value)


def test_allowed_hosts_reads_names_addresses_and_domains() -> None:
    allowed = AllowedHosts.parse(["CI.Example.com:8080", "::1", ".example.org"])
    assert allowed.names == {"ci.example.com", "localhost", "127.0.0.1", "[::1]"}
    assert allowed.domains == ("example.org",)


def _scope(kind: str, headers: list[tuple[bytes, bytes]], **extra: Any) -> Scope:
    return {"type": kind, "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": "GET", "scheme": "http" if kind == "http" else "ws",
            "path": "/api/v1/workflows", "raw_path": b"/api/v1/workflows",
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), **extra}


async def _call(app: Any, scope: Scope) -> list[Message]:
    """Messages the app sends for one request, called the way an ASGI server would."""
    sent: list[Message] = []
    first = ({"type": "websocket.connect"} if scope["type"] == "websocket"
             else {"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> Message:
        return first

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.fixture
def bare_app(tmp_path: Any) -> Any:
    """The server app, not started: what the Host check refuses never needs more."""
    settings = Settings(load_entrypoints=False, store="memory", templates="memory",
                        data_dir=tmp_path / "data", workflows_dir=tmp_path)
    return create_app(baseshift=BaseShift(settings))


@pytest.mark.parametrize(("headers", "detail"), [
    ([], "the request has no Host header"),
    ([(b"host", b"localhost"), (b"host", REBIND.encode())], "the request has 2 Host headers"),
])
async def test_a_request_without_one_host_header_is_refused(
        bare_app: Any, headers: list[tuple[bytes, bytes]], detail: str) -> None:
    start, body = await _call(bare_app, _scope("http", headers))
    assert start["status"] == 400 and detail.encode() in body["body"]
    assert (b"x-frame-options", b"DENY") in start["headers"]


async def test_a_websocket_from_a_rebound_name_is_refused(bare_app: Any) -> None:
    headers = [(b"host", REBIND.encode()), (b"origin", f"http://{REBIND}".encode())]
    denial = await _call(bare_app, _scope("websocket", headers,
                                          extensions={"websocket.http.response": {}}))
    assert denial[0]["type"] == "websocket.http.response.start"
    assert denial[0]["status"] == 400 and (b"x-frame-options", b"DENY") in denial[0]["headers"]
    assert REBIND.encode() in denial[1]["body"]
    # A server without denial responses answers 403 to a close before accept.
    closed = await _call(bare_app, _scope("websocket", headers))
    assert closed == [{"type": "websocket.close", "code": 1008, "reason": ""}]


async def test_x_forwarded_host_does_not_make_another_site_same_origin(
        make_client: Any) -> None:
    async with make_client() as (_, client):
        answer = await client.post("/ui/workflows/hello/runs", data={"name": "x"},
                                   headers={"origin": "http://evil.example",
                                            "x-forwarded-host": "evil.example"})
        assert await _count_runs(client) == 0
    assert answer.status_code == 403 and answer.json()["code"] == "request.cross-site"


# --------------------------------------------------------------------------- security headers


def _policy(header: str) -> dict[str, str]:
    directives = (d.strip().split(None, 1) for d in header.split(";") if d.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def _assert_hardened(response: httpx.Response, *, tls: bool = False) -> None:
    where = f"{response.request.method} {response.request.url} ({response.status_code})"
    headers = response.headers
    policy = headers.get("content-security-policy", "")
    assert _policy(policy) == POLICY, where
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, where
    assert headers.get("x-frame-options") == "DENY", where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "same-origin", where
    assert ("strict-transport-security" in headers) is tls, where


async def test_every_kind_of_response_carries_the_security_headers(make_client: Any) -> None:
    async with make_client() as (bs, client):
        run_id = await bs.runs.start("hello", {})
        await bs.engine.wait(run_id)
        responses = [
            await client.get("/"), await client.get("/ui/workflows"),
            await client.get(f"/ui/runs/{run_id}"),
            await client.get(f"/ui/runs/{run_id}/stream"),
            await client.get("/api/v1/workflows"), await client.get("/api/v1/openapi.json"),
            await client.get("/static/baseshift.css"), await client.get(f"/static/{HTMX_JS}"),
            await client.get("/favicon.ico"),
            await client.get("/ui/no/such/page"), await client.get("/api/v1/workflows/nope"),
            await client.get("/no/such/address"), await client.delete("/ui/runs"),
            await client.post("/api/v1/workflows", json={"workflow": "nope"}),
            await client.post("/ui/workflows/hello/runs", headers={"origin": "http://x.test"}),
            await client.get("/api/v1/workflows", headers={"host": REBIND}),
        ]
    statuses = {r.status_code for r in responses}
    assert {200, 301, 400, 403, 404, 405} <= statuses
    for response in responses:
        _assert_hardened(response)


async def test_an_unexpected_error_carries_the_security_headers(
        make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 500 is answered outside every middleware; it still carries them."""
    async def breaks(*args: Any) -> Any:
        raise RuntimeError("a bug")

    async with make_client() as (bs, made):
        transport = httpx.ASGITransport(app=create_app(baseshift=bs), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost",
                                     headers=made.headers) as client:
            monkeypatch.setattr(bs.store, "query_runs", breaks)
            page = await client.get("/ui/runs")
            api = await client.get("/api/v1/workflows")
    assert (page.status_code, api.status_code) == (500, 500)
    _assert_hardened(page)
    _assert_hardened(api)


async def test_strict_transport_security_only_over_tls(make_client: Any) -> None:
    async with make_client() as (_, client):
        plain = await client.get("/ui/workflows")
        tls = await client.get("https://localhost/ui/workflows")
        refused = await client.get("https://localhost/ui/workflows", headers={"host": REBIND})
    _assert_hardened(plain)
    _assert_hardened(tls, tls=True)
    _assert_hardened(refused, tls=True)
    assert tls.headers["strict-transport-security"] == "max-age=31536000"


# --------------------------------------------------------------------------- CSP-clean pages


class InlineCode(HTMLParser):
    """What a policy without 'unsafe-inline' and 'unsafe-eval' refuses in a page: inline
    scripts, event-handler attributes, style attributes and elements, javascript: URLs, and
    the htmx attributes that evaluate code (hx-on, js: values, hx-vars, event filters)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        for name, value in attrs:
            if problem := _attribute_problem(name.removeprefix("data-"), value or ""):
                self.found.append(f"<{tag} {name}={value!r}>: {problem}")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script" and not dict(attrs).get("src"):
            self.found.append("inline <script>")

    def handle_endtag(self, tag: str) -> None:
        self._tag = ""

    def handle_data(self, data: str) -> None:
        if self._tag == "script" and data.strip():
            self.found.append(f"script text {data.strip()[:40]!r}")


def _attribute_problem(name: str, value: str) -> str | None:
    if name.startswith("on"):
        return "event handler"
    if name == "style":
        return "style attribute"
    if name in ("href", "src", "action", "formaction") and \
            value.strip().lower().startswith("javascript:"):
        return "javascript: URL"
    if name.startswith("hx-on") or name == "hx-vars":
        return "htmx evaluates it"
    if name == "hx-vals" and value.strip().startswith(("js:", "javascript:")):
        return "htmx evaluates it"
    if name == "hx-trigger" and "[" in value:
        return "htmx event filter (evaluated)"
    return None


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


@pytest.mark.parametrize("snippet", [
    "<script>alert(1)</script>", '<button onclick="go()">', '<p style="color: red">',
    "<svg><style>.a{}</style></svg>", '<a href="javascript:go()">', '<div hx-on:click="x()">',
    '<div data-hx-on-click="x()">', '<div hx-vals="js:{a: 1}">',
    '<input hx-trigger="keyup[ctrlKey]">', '<script src="/static/x.js">go()</script>',
])
def test_the_inline_code_check_finds_each_kind(snippet: str) -> None:
    assert inline_code(snippet)


async def _when(client: httpx.AsyncClient, url: str, text: str) -> str:
    """The page once it shows `text` (the engine runs beside the test)."""
    for _ in range(2000):
        html = (await client.get(url)).text
        if text in html:
            return html
        await asyncio.sleep(0.01)
    raise AssertionError(f"{url} never showed {text!r}")


def _stream_html(body: str) -> str:
    return "\n".join(line.removeprefix("data: ") for line in body.splitlines()
                     if line.startswith("data: "))


async def _every_page(client: httpx.AsyncClient, bs: BaseShift) -> dict[str, str]:
    """Every page the UI serves, with runs of each kind (done, failed with handlers and
    retries, waiting for a person, fanned out), as {address: html}."""
    runs = {name: await bs.runs.start(name, {}) for name in
            ("hello", "nightly_export", "sum_of_squares", "release_signoff")}
    for name in ("hello", "nightly_export", "sum_of_squares"):
        await bs.engine.wait(runs[name])
    pages = {f"run of {name}": (await client.get(f"/ui/runs/{run_id}")).text
             for name, run_id in runs.items()}
    pages["run of release_signoff"] = await _when(
        client, f"/ui/runs/{runs['release_signoff']}", "Waiting for a result")
    listing = (await client.get("/ui/workflows")).text
    addresses = ["/", "/ui/workflows", "/ui/runs", "/ui/templates",
                 "/ui/templates/payment.validate", "/ui/templates/greeting", "/ui/validate",
                 "/ui/no/such/page",
                 *sorted(set(re.findall(r'href="(/ui/workflows/[^"/]+)"', listing)))]
    for address in addresses:
        pages[address] = (await client.get(address)).text
    pages["template diff"] = (await client.get(
        "/ui/templates/payment.validate", params={"from": "1.2.0", "to": "1.3.0"},
        headers={"HX-Request": "true"})).text
    source = (bs.catalog.folder / "hello.bsw").read_text()
    pages["validated"] = (await client.post("/ui/validate", data={"source": source})).text
    pages["refused"] = (await client.post("/ui/validate", data={"source": "workflow {"})).text
    pages["run form errors"] = (await client.post("/ui/workflows/sum_of_squares/runs",
                                                  data={"numbers": "[oops"})).text
    stream = await client.get(f"/ui/runs/{runs['nightly_export']}/stream")
    pages["live blocks"] = _stream_html(stream.text)
    return pages


async def test_no_page_has_code_or_style_the_policy_refuses(make_client: Any) -> None:
    async with make_client() as (bs, client):
        pages = await _every_page(client, bs)
    failed = pages["run of nightly_export"]
    assert '<rect class="bar state-failed' in failed and 'class="dag"' in failed
    assert "on failure" in failed and "/ui/workflows/hello" in pages
    assert 'class="panel fanout"' in pages["run of sum_of_squares"]
    assert 'class="dag"' in pages["validated"] and "problem" in pages["refused"]
    assert "<h1>Not found</h1>" in pages["/ui/no/such/page"]
    assert '"includeIndicatorStyles": false' in pages["/"]
    found = {address: problems for address, html in pages.items()
             if (problems := inline_code(html))}
    assert found == {}
    assert all(html.strip() for html in pages.values())


def test_the_stylesheet_has_the_rules_htmx_would_inject() -> None:
    css = (builtin_static() / "baseshift.css").read_text()
    assert ".htmx-indicator {" in css and ".htmx-request .htmx-indicator" in css
    assert ".dag .state-failed rect" in css
