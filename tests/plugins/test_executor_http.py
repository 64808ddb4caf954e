"""The `http` executor against a real loopback server (and a mock transport for DNS)."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from baseshift.core.errors import ExecutionError
from baseshift.core.protocols import Executor, JobContext, JobResult
from baseshift.plugins.executors import http as executor_http
from baseshift.plugins.executors.http import HttpExecutor

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from loopback_http import Loopback, closed_port, running_server  # noqa: E402

LIMIT = 20  # seconds; only to keep a broken test from hanging the suite


def ctx(**config: Any) -> JobContext:
    return JobContext(run_id="r", job="j", attempt=1, config=config)


@pytest.fixture
def server() -> Iterator[Loopback]:
    with running_server() as loopback:
        yield loopback


@pytest.fixture
async def executor() -> AsyncIterator[HttpExecutor]:
    http = HttpExecutor()
    yield http
    await http.aclose()


async def run(executor: HttpExecutor, **config: Any) -> JobResult:
    return await asyncio.wait_for(executor.execute(ctx(**config)), LIMIT)


async def fails(executor: HttpExecutor, **config: Any) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        await run(executor, **config)
    return info.value


# ------------------------------------------------------------------ contract


def test_is_an_executor_registered_by_the_hook() -> None:
    assert executor_http.register_executors() == [HttpExecutor]
    assert isinstance(HttpExecutor(), Executor)
    assert HttpExecutor.name == "http"


def test_config_schema_is_valid_and_precise() -> None:
    schema = HttpExecutor.config_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = [{"url": "http://x"},
            {"url": "https://x/y", "method": "POST", "headers": {"A": "b"},
             "query": {"q": 1, "tags": ["a", True]}, "json": None, "timeout": 0.5,
             "expect_status": [200, 404], "follow_redirects": True},
            {"url": "HTTP://x", "body": "raw", "expect_status": 201}]
    bad = [{}, {"url": "ftp://x"}, {"url": "x"}, {"url": "http://x", "method": "FETCH"},
           {"url": "http://x", "json": {}, "body": ""}, {"url": "http://x", "timeout": 0},
           {"url": "http://x", "headers": {"A": 1}}, {"url": "http://x", "expect_status": 99},
           {"url": "http://x", "query": {"q": {"nested": 1}}}, {"url": "http://x", "verb": "GET"}]
    assert all(validator.is_valid(c) for c in good)
    for config in bad:
        assert not validator.is_valid(config), config


# ------------------------------------------------------------------ requests and output


async def test_get_json_output_shape(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/json")
    assert set(result.output) == {"status", "headers", "body"}
    assert result.output["status"] == 200
    assert result.output["body"] == {"hello": "world"}
    headers = result.output["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-served-by"] == "loopback, tests"
    assert result.log == f"GET {server.url}/json\n200 OK (18 bytes)"


async def test_post_json(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/echo", method="POST",
                       json={"id": 7, "tags": ["a"]})
    echo = result.output["body"]
    assert echo["method"] == "POST"
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["body"] == '{"id": 7, "tags": ["a"]}'


async def test_json_null_is_sent_as_a_body(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/echo", method="PUT", json=None)
    assert result.output["body"]["body"] == "null"


async def test_raw_body_with_own_content_type(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/echo", method="PATCH", body="a=1&b=2",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    echo = result.output["body"]
    assert echo["body"] == "a=1&b=2"
    assert echo["headers"]["content-type"] == "application/x-www-form-urlencoded"


async def test_json_keeps_a_given_content_type(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/echo", method="POST", json=[1],
                       headers={"content-type": "application/vnd.api+json"})
    assert result.output["body"]["headers"]["content-type"] == "application/vnd.api+json"


async def test_headers_and_query(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/echo?fixed=1",
                       headers={"X-Token": "abc", "Accept": "application/json"},
                       query={"page": 2, "tag": ["a", "b"], "draft": False})
    echo = result.output["body"]
    assert echo["headers"]["x-token"] == "abc"
    assert echo["headers"]["accept"] == "application/json"
    assert echo["query"] == {"fixed": ["1"], "page": ["2"], "tag": ["a", "b"],
                             "draft": ["false"]}


async def test_header_and_query_values_are_not_logged(server: Loopback,
                                                      executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/echo", headers={"X-Token": "s3cret"},
                       query={"key": "s3cret"})
    assert "s3cret" not in result.log


@pytest.mark.parametrize(("path", "body"), [
    ("/text", "plain text"),
    ("/looks-json", [1, 2]),
    ("/empty", None),
    ("/latin1", "café"),
])
async def test_body_parsing(server: Loopback, executor: HttpExecutor, path: str,
                            body: Any) -> None:
    assert (await run(executor, url=f"{server.url}{path}")).output["body"] == body


async def test_head_request(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/json", method="HEAD")
    assert result.output["status"] == 200
    assert result.output["body"] is None


async def test_the_client_is_shared_and_reuses_connections(server: Loopback,
                                                           executor: HttpExecutor) -> None:
    await run(executor, url=f"{server.url}/json")
    client = executor.client
    await run(executor, url=f"{server.url}/text")
    assert executor.client is client
    assert len(set(server.client_ports)) == 1


async def test_aclose_then_use_again(server: Loopback, executor: HttpExecutor) -> None:
    await run(executor, url=f"{server.url}/json")
    first = executor.client
    await executor.aclose()
    assert first.is_closed
    assert (await run(executor, url=f"{server.url}/json")).output["status"] == 200
    assert executor.client is not first


# ------------------------------------------------------------------ status codes


async def test_server_error_fails_with_status_and_excerpt(server: Loopback,
                                                          executor: HttpExecutor) -> None:
    error = await fails(executor, url=f"{server.url}/status/500")
    assert error.message == (f"GET {server.url}/status/500 failed: unexpected status 500 "
                             "Internal Server Error, expected 2xx: status 500 body")


async def test_expect_status_accepts_listed_codes(server: Loopback,
                                                  executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/status/404", expect_status=[200, 404])
    assert result.output["status"] == 404
    assert result.output["body"] == "status 404 body"


async def test_expect_status_rejects_other_codes(server: Loopback,
                                                 executor: HttpExecutor) -> None:
    error = await fails(executor, url=f"{server.url}/json", expect_status=201)
    assert "unexpected status 200 OK, expected 201: {\"hello\": \"world\"}" in error.message


async def test_redirects_are_not_followed_by_default(server: Loopback,
                                                     executor: HttpExecutor) -> None:
    error = await fails(executor, url=f"{server.url}/redirect")
    assert "unexpected status 302 Found (location: /json), expected 2xx" in error.message


async def test_follow_redirects(server: Loopback, executor: HttpExecutor) -> None:
    result = await run(executor, url=f"{server.url}/redirect", follow_redirects=True)
    assert result.output["body"] == {"hello": "world"}


async def test_long_error_bodies_are_cut(server: Loopback, executor: HttpExecutor) -> None:
    error = await fails(executor, url=f"{server.url}/big", expect_status=201)
    assert error.message.endswith("x" * executor_http.EXCERPT_CHARS + "...")


# ------------------------------------------------------------------ transport failures


async def test_connection_refused(executor: HttpExecutor) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    error = await fails(executor, url=url)
    assert error.message.startswith(f"GET {url} failed: cannot connect")


async def test_credentials_are_kept_out_of_messages(executor: HttpExecutor) -> None:
    error = await fails(executor, url=f"http://user:hunter2@127.0.0.1:{closed_port()}/x")
    assert "hunter2" not in error.message
    assert "127.0.0.1" in error.message


async def test_dns_failure() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    class MockedHttp(HttpExecutor):
        def make_client(self) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.MockTransport(refuse))

    mocked = MockedHttp()
    try:
        error = await fails(mocked, url="https://no-such-host.invalid/")
    finally:
        await mocked.aclose()
    assert error.message == ("GET https://no-such-host.invalid/ failed: cannot connect: "
                             "[Errno -2] Name or service not known")


async def test_timeout_fails_the_attempt(server: Loopback, executor: HttpExecutor) -> None:
    error = await fails(executor, url=f"{server.url}/slow", timeout=0.3)
    assert error.message == f"GET {server.url}/slow failed: timed out after 0.3 s"
    assert await asyncio.to_thread(server.slow_abandoned.wait, LIMIT)


async def test_cancel_in_the_middle_of_a_response_closes_it(server: Loopback,
                                                            executor: HttpExecutor) -> None:
    task = asyncio.create_task(executor.execute(ctx(url=f"{server.url}/slow")))
    assert await asyncio.to_thread(server.slow_started.wait, LIMIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    assert await asyncio.to_thread(server.slow_abandoned.wait, LIMIT)
    # The executor stays usable after a cancelled request.
    assert (await run(executor, url=f"{server.url}/json")).output["status"] == 200


async def test_body_size_limit(server: Loopback, executor: HttpExecutor,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor_http, "MAX_BODY", 1000)
    error = await fails(executor, url=f"{server.url}/big")
    assert error.message.endswith("failed: response body is larger than 1000 bytes")


# ------------------------------------------------------------------ bad config


@pytest.mark.parametrize(("config", "message"), [
    ({}, "'url' must be an http:// or https:// URL, got None"),
    ({"url": "ftp://x"}, "'url' must be an http:// or https:// URL"),
    ({"url": "http://x", "method": "get"}, "'method' must be one of GET, HEAD, POST"),
    ({"url": "http://x", "json": 1, "body": "1"}, "give either 'json' or 'body', not both"),
    ({"url": "http://x", "body": {"a": 1}}, "'body' must be a string, got dict"),
    ({"url": "http://x", "json": float("nan")}, "'json' is not JSON-serialisable"),
    ({"url": "http://x", "headers": {"A": 1}}, "'headers' must be an object of strings"),
    ({"url": "http://x", "timeout": -1}, "'timeout' must be a positive number of seconds"),
    ({"url": "http://x", "expect_status": "200"}, "'expect_status' must be an integer"),
])
async def test_bad_config(executor: HttpExecutor, config: dict[str, Any], message: str) -> None:
    assert message in (await fails(executor, **config)).message


async def test_invalid_url(executor: HttpExecutor) -> None:
    error = await fails(executor, url="http://[::1/")
    assert "failed: invalid URL" in error.message
