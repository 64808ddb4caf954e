"""Shipping log lines to Elasticsearch (plugins/logship/), tested at the HTTP boundary
against a recorded bulk endpoint on loopback (tests/plugins/es_support.py): the NDJSON
shape and index names, sign-in, batch sizes, retries, partial failures, failover, a full
buffer, the flush at shutdown, bad options, and nothing at all when unconfigured."""
from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.app.logbatch import LogBatcher
from baseshift.core.errors import ConfigError
from baseshift.core.settings import Settings
from baseshift.plugins.logship.elasticsearch import shipping_of
from baseshift.plugins.logship.es_config import Auth, read_config
from baseshift.plugins.logship.shipping import Shipping, start_elasticsearch
from tests.log_support import json_log
from tests.plugins.es_support import RecordedElastic, recorded_elastic
from tests.plugins.loopback_http import closed_port
from tests.tls_support import make_pki

log = logging.getLogger("baseshift.tests.logship")
KEY = "es-api-key-271828"


@pytest.fixture
def es() -> Iterator[RecordedElastic]:
    with recorded_elastic() as server:
        yield server


@contextmanager
def info_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    with json_log() as (lines, _raw):
        yield lines


@asynccontextmanager
async def shipping(url: str | list[str], **options: Any) -> AsyncIterator[Shipping]:
    """A shipper on its own (no application, so no other line reaches it)."""
    options = {"interval": 0.02, "backoff": 0.01, **options}
    config = read_config(Settings(extra={"elasticsearch": {"url": url, **options}}))
    assert config is not None
    running = start_elasticsearch(config, Auth())
    try:
        yield running
    finally:
        await running.stop(config.shutdown_timeout)


def ours(docs: list[dict[str, Any]]) -> list[str]:
    return [d["message"] for d in docs if d.get("logger") == log.name]


async def test_lines_go_as_ndjson_create_actions_into_the_index_of_their_day(
        es: RecordedElastic) -> None:
    with info_lines():
        async with shipping(es.url) as s:
            log.info("first", extra={"order_id": 7})
            log.warning("second")
            await es.wait_for(lambda: s.shipped == 2, "both lines")
            assert (s.shipped, s.failed, s.dropped) == (2, 0, 0)
    request = es.requests[0]
    assert request.path == "/_bulk"
    assert request.headers["content-type"] == "application/x-ndjson"
    assert "authorization" not in request.headers
    assert request.body.endswith(b"\n") and request.body.count(b"\n") == 4
    first = es.accepted[0]
    assert (first["message"], first["level"], first["order_id"]) == ("first", "info", 7)
    assert first["@timestamp"] == first["timestamp"]
    day = first["timestamp"][:10].replace("-", ".")
    assert request.actions[0] == {"create": {"_index": f"baseshift-logs-{day}"}}


async def test_a_data_stream_name_is_used_as_it_is(es: RecordedElastic) -> None:
    with info_lines():
        async with shipping(es.url, index="logs-baseshift-prod"):
            log.info("into the stream")
            await es.wait_for(lambda: bool(es.accepted), "the line")
    assert es.requests[0].actions == [{"create": {"_index": "logs-baseshift-prod"}}]


async def test_batches_hold_at_most_batch_lines_and_shutdown_flushes(
        es: RecordedElastic) -> None:
    with info_lines():
        async with shipping(es.url, batch=3, interval=3600) as s:
            for i in range(7):
                log.info("line %d", i)
            assert es.requests == []  # the interval has not come: all wait for the stop
    assert [len(r.docs) for r in es.requests] == [3, 3, 1]
    assert ours(es.accepted) == [f"line {i}" for i in range(7)]
    assert s.shipped == 7 and s.batcher.pending() == 0


async def test_a_full_buffer_drops_the_oldest_lines_and_counts_them(
        es: RecordedElastic) -> None:
    with info_lines():
        async with shipping(es.url, max_buffer=3, interval=3600) as s:
            for i in range(5):
                log.info("line %d", i)
            assert s.dropped == 2
    assert ours(es.accepted) == ["line 2", "line 3", "line 4"]
    assert (s.shipped, s.dropped) == (3, 2)


async def test_a_busy_or_failing_cluster_is_retried_until_it_answers(
        es: RecordedElastic) -> None:
    es.statuses.extend([429, 500, 503])
    with info_lines():
        async with shipping(es.url, retries=3) as s:
            log.info("patient line")
            await es.wait_for(lambda: s.shipped == 1, "the line after three refusals")
            assert (s.shipped, s.failed) == (1, 0)
    assert len(es.requests) == 4
    assert len({r.body for r in es.requests}) == 1


async def test_a_down_cluster_keeps_the_lines_until_it_is_back_and_warns_once(
        es: RecordedElastic) -> None:
    es.down = True
    with info_lines() as lines:
        async with shipping(es.url, retries=1) as s:
            log.info("kept one")
            log.info("kept two")
            await es.wait_for(lambda: len(es.requests) >= 6 and s.batcher.pending() == 2,
                              "three failed flushes, the lines back in the buffer")
            assert s.shipped == 0
            es.down = False
            await es.wait_for(lambda: s.shipped == 2, "the lines, once it is back")
            assert (s.shipped, s.failed, s.dropped) == (2, 0, 0)
    assert ours(es.accepted) == ["kept one", "kept two"]
    warnings = [x for x in lines() if x["logger"] == "baseshift.logbatch"]
    assert len(warnings) == 1, warnings  # at most one a minute
    assert "could not write 2 log lines to elasticsearch" in warnings[0]["message"]


async def test_item_errors_retry_busy_items_only_and_drop_refused_ones(
        es: RecordedElastic) -> None:
    def status(doc: dict[str, Any], seen: int) -> int:
        message = doc.get("message")
        return 400 if message == "bad" else 429 if message == "busy" and not seen else 201

    es.item_status = status
    with info_lines() as lines:
        async with shipping(es.url, batch=10, interval=3600) as s:
            for message in ("fine", "bad", "busy"):
                log.info(message)
            assert await s.batcher.flush_now()
            assert (s.shipped, s.failed) == (2, 1)
    assert [ours(r.docs) for r in es.requests] == [["fine", "bad", "busy"], ["busy"]]
    assert ours(es.accepted) == ["fine", "busy"]
    refused = [x["message"] for x in lines() if x["logger"] == "baseshift.logbatch"]
    assert refused == ["Elasticsearch refused 1 log lines: mapper_parsing_exception ×1"]


async def test_an_item_failing_every_retry_is_counted_and_never_sent_again(
        es: RecordedElastic) -> None:
    es.item_status = lambda doc, seen: 503 if doc.get("message") == "stuck" else 201
    with info_lines():
        async with shipping(es.url, retries=2, batch=10, interval=3600) as s:
            log.info("stuck")
            assert await s.batcher.flush_now()
            log.info("after")
            assert await s.batcher.flush_now()
            assert (s.shipped, s.failed) == (1, 1)
    assert [ours(r.docs) for r in es.requests] == [["stuck"], ["stuck"], ["stuck"], ["after"]]


async def test_a_node_that_does_not_answer_is_passed_over(es: RecordedElastic) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    with info_lines():
        async with shipping([dead, es.url], retries=1) as s:
            log.info("via the second node")
            await es.wait_for(lambda: s.shipped == 1, "the line")
            log.info("and the next one")
            await es.wait_for(lambda: s.shipped == 2, "the next line")
    assert len(es.requests) == 2  # the live node is kept


async def test_shutdown_gives_up_on_a_down_cluster_and_counts_the_lines(
        es: RecordedElastic) -> None:
    es.down = True
    with info_lines():
        async with shipping(es.url, retries=5, backoff=30, interval=3600,
                            shutdown_timeout=0.2, batch=2) as s:
            for i in range(5):
                log.info("lost %d", i)
    assert (s.shipped, s.dropped) == (0, 5)
    assert len(es.requests) == 1  # no retry past the deadline


async def test_https_nodes_are_trusted_through_ca_file_only(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with recorded_elastic(pki) as es, info_lines():
        async with shipping(es.url, ca_file=str(pki.ca)) as trusting:
            log.info("over tls")
            await es.wait_for(lambda: trusting.shipped == 1, "the line over TLS")
        async with shipping(es.url, retries=0, interval=3600) as doubting:
            log.info("refused")
            assert not await doubting.batcher.flush_now()  # an unknown CA: nothing sent
            assert doubting.batcher.pending() == 1
        async with shipping(es.url, verify=False) as careless:
            log.info("unchecked")
            await es.wait_for(lambda: careless.shipped == 1, "the line, unchecked")
    assert doubting.dropped == 1  # and at its stop, still not sent
    assert es.messages() == ["over tls", "unchecked"]


# ------------------------------------------------------------------ in an application


async def test_nothing_is_shipped_unless_configured(make_baseshift: Callable[..., Any],
                                                    es: RecordedElastic) -> None:
    for extra in ({}, {"elasticsearch": {}}):
        with info_lines():
            before = set(logging.getLogger("baseshift").handlers)
            async with make_baseshift(extra=extra) as bs:
                log.warning("not shipped")
                assert shipping_of(bs) is None
                added = set(logging.getLogger("baseshift").handlers) - before
                assert not any(isinstance(h, LogBatcher) for h in added)
    assert es.requests == []


async def test_an_api_key_from_a_secret_signs_the_requests_and_is_never_shipped(
        make_baseshift: Callable[..., Any], es: RecordedElastic,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_ES_TEST_KEY", KEY)
    options = {"url": es.url, "interval": 0.02, "api_key": "${secret.ES_TEST_KEY}"}
    with json_log() as (_lines, raw):
        async with make_baseshift(extra={"elasticsearch": options}) as bs:
            log.info("signed")
            await es.wait_for(lambda: "signed" in es.messages(), "the line")
            running = shipping_of(bs)
            assert running is not None and KEY not in repr(running.shipper.config)
        assert shipping_of(bs) is None  # stopped with the application
    assert {r.headers["authorization"] for r in es.requests} == {f"ApiKey {KEY}"}
    assert not any(KEY.encode() in r.body for r in es.requests)
    assert KEY not in raw.getvalue()


async def test_username_and_password_sign_in_with_basic_auth(
        make_baseshift: Callable[..., Any], es: RecordedElastic) -> None:
    options = {"url": es.url, "interval": 0.02, "username": "shipper", "password": "pw:1"}
    with info_lines():
        async with make_baseshift(extra={"elasticsearch": options}):
            log.info("signed")
            await es.wait_for(lambda: "signed" in es.messages(), "the line")
    token = base64.b64encode(b"shipper:pw:1").decode()
    assert es.requests[0].headers["authorization"] == f"Basic {token}"


async def test_an_unknown_secret_fails_the_start(make_baseshift: Callable[..., Any]) -> None:
    options = {"url": "http://127.0.0.1:9", "api_key": "${secret.NO_SUCH_ES_SECRET_X}"}
    with pytest.raises(ConfigError, match="NO_SUCH_ES_SECRET_X"):
        async with make_baseshift(extra={"elasticsearch": options}):
            pass


@pytest.mark.parametrize(("options", "names"), [
    ({"index": "logs"}, "url"),
    ({"url": "es1:9200"}, "url"),
    ({"url": "ftp://es1"}, "url"),
    ({"url": ["http://es1:9200", 3]}, "url"),
    ({"url": "http://user:pw@es1:9200"}, "credentials"),
    ({"url": "http://es1", "index": "Baseshift-{date}"}, "lower case"),
    ({"url": "http://es1", "index": "_logs"}, "cannot start"),
    ({"url": "http://es1", "index": "logs {date}"}, "index"),
    ({"url": "http://es1", "index": "logs-{day}"}, "brace"),
    ({"url": "http://es1", "api_key": "k", "username": "u", "password": "p"}, "api_key"),
    ({"url": "http://es1", "username": "u"}, "password"),
    ({"url": "http://es1", "ca_file": "/no/such/ca.pem"}, "ca_file"),
    ({"url": "http://es1", "verify": "no"}, "verify"),
    ({"url": "http://es1", "batch": 0}, "batch"),
    ({"url": "http://es1", "retries": -1}, "retries"),
    ({"url": "http://es1", "max_bufer": 10}, "max_bufer"),
])
def test_a_bad_option_fails_the_start_naming_it(options: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        BaseShift(Settings(load_entrypoints=False, store="memory", templates="memory",
                           extra={"elasticsearch": options}))


def test_options_are_read_with_their_defaults() -> None:
    config = read_config(Settings(extra={"elasticsearch": {
        "url": ["https://es1:9200/", "https://es2:9200"], "retries": 0}}))
    assert config is not None
    assert config.nodes == ("https://es1:9200", "https://es2:9200")
    assert (config.index, config.batch, config.retries) == ("baseshift-logs-{date}", 500, 0)
    assert json.dumps(config.nodes)
