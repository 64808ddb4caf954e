"""The log search page (`/ui/logs`) and what fills the store: terms marked in escaped text,
htmx fragments, a bad query's errors with line:col; the server's and a worker's own lines
captured with their source."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import ConfigError
from baseshift.core.loglines import LogSearch
from baseshift.core.logquery import LogQuery, Term
from baseshift.core.settings import Settings
from baseshift.core.stash import WORKING
from baseshift.plugins.logs.pages import marked
from tests.web.logs_support import a_line, captured, store_lines

T0 = 1764979200.0


def test_terms_are_marked_in_text_escaped_first() -> None:
    text = '<script>alert("boom")</script> & BOOM'
    out = marked(text, [Term(None, "boom")])
    assert out == ('&lt;script&gt;alert(&#34;<mark>boom</mark>&#34;)&lt;/script&gt; &amp; '
                   '<mark>BOOM</mark>')
    assert marked("a&b", [Term(None, "amp")]) == "a&amp;b"  # never inside an entity
    assert marked("fetching", [Term(None, "fet*ing"), Term(None, "chi")]) == \
        "<mark>fetching</mark>"  # overlapping matches make one mark
    assert marked("abc", [Term(None, "")]) == "abc"  # an empty match marks nothing


async def test_the_page_shows_matching_lines_marked_and_escaped(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await store_lines(bs, a_line('<img src=x onerror="boom()"> boom', T0,
                                     workflow_id="hello", run_id="r-1", job="fetch",
                                     error="<b>boom</b> failed"),
                          a_line("quiet", T0 + 1),
                          a_line("forged boom", T0 + 2, run_id="../a/b?c=<i>"))
        page = await client.get("/ui/logs", params={"q": "boom OR error:boom"})
        assert page.status_code == 200
        assert '&lt;img src=x onerror=&#34;<mark>boom</mark>()&#34;&gt; <mark>boom</mark>' \
            in page.text
        assert "&lt;b&gt;<mark>boom</mark>&lt;/b&gt; failed" in page.text
        assert "<img" not in page.text and "quiet" not in page.text
        assert 'href="/ui/runs/r-1"' in page.text and 'aria-current="page">Logs' in page.text
        assert "../a/b?c=&lt;i&gt;" in page.text and "/ui/runs/../" not in page.text
        fragment = await client.get("/ui/logs", params={"q": "quiet"},
                                    headers={"HX-Request": "true"})
        assert fragment.text.lstrip().startswith('<div id="log-results"')
        assert "quiet" in fragment.text and "<html" not in fragment.text
        bad = await client.get("/ui/logs", params={"q": "nosuch:x"})
        assert bad.status_code == 422
        assert 'id="log-query-error"' in bad.text and "1:1" in bad.text


async def test_the_servers_own_lines_are_captured_with_their_source(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        logging.getLogger("baseshift.test").warning("disk nearly full: %d%%", 97)
        logging.getLogger("baseshift.test").debug("below the captured level")
        await captured(bs)
        answer = (await client.get("/api/v1/logs", params={"q": "disk OR captured"})).json()
        (line,) = answer["logs"]
        assert (line["message"], line["level"], line["source"], line["logger"]) == (
            "disk nearly full: 97%", "warning", "server", "baseshift.test")


async def test_a_workers_own_lines_are_captured_as_the_workers(tmp_path: Path) -> None:
    bs = BaseShift(Settings(load_entrypoints=False, store="sqlite", data_dir=tmp_path / "d",
                            workflows_dir=tmp_path))
    bs.stash[WORKING] = True
    async with bs:
        logging.getLogger("baseshift.worker").warning("took attempt 7")
        await captured(bs)
        page = await bs.store.search_log_lines(  # type: ignore[attr-defined]
            LogSearch(LogQuery(Term(None, "attempt 7"))))
    assert [x.fields["source"] for x in page.lines] == ["worker"]


async def test_capture_can_be_turned_off(make_client: Callable[..., Any]) -> None:
    async with make_client(extra={"logs": {"capture": False}}) as (bs, client):
        logging.getLogger("baseshift.test").warning("not kept")
        await captured(bs)
        assert (await client.get("/api/v1/logs")).json()["total"] == 0


@pytest.mark.parametrize("access", [False, True])
async def test_access_lines_are_kept_only_when_asked(
        make_client: Callable[..., Any], access: bool, caplog: pytest.LogCaptureFixture) -> None:
    """A line per request would make the store grow with the traffic (probes, scrapes):
    kept only with `[plugins.logs] access = true`; other lines of a request are kept."""
    caplog.set_level(logging.INFO, logger="baseshift")  # as `baseshift serve` logs
    async with make_client(extra={"logs": {"access": access}}) as (bs, client):
        answered = await client.get("/api/v1/workflows")
        logging.getLogger("baseshift.test").warning("after the request")
        await captured(bs)
        found = (await client.get("/api/v1/logs", params={
            "q": f'request_id:"{answered.headers["x-request-id"]}" OR "after the request"'}
                                  )).json()["logs"]
    kinds = sorted(x.get("event") or x["message"] for x in found)
    assert kinds == (["after the request", "http.request"] if access else ["after the request"])


async def test_a_wrong_access_option_fails_the_start(tmp_path: Path) -> None:
    bs = BaseShift(Settings(load_entrypoints=False, store="sqlite", data_dir=tmp_path / "d",
                            workflows_dir=tmp_path, extra={"logs": {"access": "yes"}}))
    with pytest.raises(ConfigError, match="plugins.logs.access"):
        async with bs:
            pass
