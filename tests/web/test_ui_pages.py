"""The web UI's pages through the real app: rendering, forms, actions, htmx fragments, SSE."""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import StoreError
from baseshift.core.states import JobState, RunState
from baseshift.plugins.ui import routes as web_ui
from baseshift.plugins.ui import runs as runs_ui
from baseshift.web.app import create_app
from baseshift.web.forms import field_of_error
from baseshift.web.highlight import highlight_line
from baseshift.web.render import HTMX_JS, SSE_JS

GREET = """
workflow greet {
  version "1.0.0"
  description "Say hello"
  input {
    amount: number,
    name: string = "world",
    count: integer = 2,
    loud: boolean = false,
    tags: list<string> = ["a"],
    note?: string
  }
  job hello uses shell { with { command: "echo '{\\"n\\": ${input.count}}'" } }
  job done uses shell { needs hello  with { command: "echo done" } }
}
"""

BREAKS = """
workflow breaks {
  version "1.0.0"
  job first uses shell { with { command: "echo one" } }
  job boom uses shell {
    needs first
    with { command: "echo 'the disk is on fire' >&2; exit 2" }
  }
  job after uses shell { needs boom  with { command: "echo never" } }
}
"""

APPROVE = """
workflow approve {
  version "1.0.0"
  job ask uses manual { with { prompt: "Approve the purchase?" } }
  job after uses shell { needs ask  with { command: "echo approved" } }
}
"""

NIGHTLY = """
workflow nightly {
  version "1.0.0"
  schedule "0 3 * * *" timezone "Europe/Paris" missed catch-up with { size: 2 }
  webhook secret NIGHTLY_HOOK
  input { size: integer = 1 }
  job tick uses shell { with { command: "echo tick" } }
}
"""

SOMETIMES = """
workflow sometimes {
  version "1.0.0"
  input { size: integer = 3 }
  job first uses shell { with { command: "echo one" } }
  job never uses shell { needs first  when input.size > 10  with { command: "echo big" } }
  job square uses shell {
    for x in range(input.size)
    with { command: "echo ${x * x}" }
  }
}
"""

BROKEN = """
workflow broken {
  version "1.0.0"
  job a uses shel { with { command: "echo" } }
}
"""

Client = tuple[BaseShift, httpx.AsyncClient]


@pytest.fixture
def ui_workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "ui-workflows"
    folder.mkdir()
    for name, text in (("greet", GREET), ("breaks", BREAKS), ("approve", APPROVE),
                       ("nightly", NIGHTLY), ("broken", BROKEN), ("sometimes", SOMETIMES)):
        (folder / f"{name}.bsw").write_text(text)
    return folder


@pytest.fixture
def ui(make_client: Callable[..., Any], ui_workflows: Path) -> Callable[..., Any]:
    @asynccontextmanager
    async def factory(**settings: Any) -> AsyncIterator[Client]:
        settings.setdefault("store", "sqlite")
        async with make_client(workflows=ui_workflows, **settings) as pair:
            yield pair

    return factory


async def finished_run(bs: BaseShift, workflow: str, **inputs: Any) -> str:
    run_id = await bs.runs.start(workflow, inputs)
    await bs.engine.wait(run_id)
    return run_id


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


# --------------------------------------------------------------------------- layout


async def test_every_page_has_the_layout_nav_skip_link_and_local_scripts(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        for url, current in (("/", "Dashboard"), ("/ui/workflows", "Workflows"),
                             ("/ui/runs", "Runs"), ("/ui/templates", "Templates"),
                             ("/ui/validate", "Validate")):
            page = await client.get(url)
            assert page.status_code == 200, url
            html = page.text
            assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
            assert '<a class="skip-link" href="#main">' in html and 'id="main"' in html
            assert re.search(rf'aria-current="page">{current}<', html), url
            assert f"/static/{HTMX_JS}" in html and f"/static/{SSE_JS}" in html
            assert "https://" not in html, "no CDN"
            assert len(re.findall(r"<h1>", html)) == 1


async def test_static_files_are_the_vendored_htmx_and_the_stylesheet(
        ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        htmx = await client.get(f"/static/{HTMX_JS}")
        assert htmx.status_code == 200 and 'version:"2.0.11"' in htmx.text.replace(" ", "")
        assert (await client.get(f"/static/{SSE_JS}")).status_code == 200
        css = await client.get("/static/baseshift.css")
        assert "@media (max-width" in css.text


# --------------------------------------------------------------------------- dashboard


async def test_dashboard_counts_runs_by_state_and_lists_failures_first(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        ok = await finished_run(bs, "greet", amount=1)
        bad = await finished_run(bs, "breaks")
        html = (await client.get("/")).text
    counts = {k: v for v, k in re.findall(r'<span class="n">(\d+)</span>(\w+)</a>', html)}
    assert counts["failed"] == "1" and counts["completed"] == "1" and counts["running"] == "0"
    assert html.index(">failed</a>") < html.index(">completed</a>")
    failures = html[html.index('id="failed-heading"'):html.index('id="recent-heading"')]
    assert bad in failures and ok not in failures
    assert ok in html[html.index('id="recent-heading"'):]


# --------------------------------------------------------------------------- workflows


async def test_workflow_list_shows_each_workflow_and_the_errors_of_broken_files(
        ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        html = (await client.get("/ui/workflows")).text
    for name in ("greet", "breaks", "approve", "broken"):
        assert f'href="/ui/workflows/{name}"' in html
    assert "Errors in broken.bsw" in html
    assert "there is no executor &#39;shel&#39;" in html
    assert "did you mean &#39;shell&#39;?" in html


async def test_workflow_page_has_highlighted_source_dag_and_a_typed_run_form(
        ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        html = (await client.get("/ui/workflows/greet")).text
    assert '<span class="tok-keyword">workflow</span>' in html
    assert '<span class="tok-interp">${input.count}</span>' in html
    assert 'id="dag-node-hello"' in html and 'id="dag-node-done"' in html
    assert "uses shell" in html
    assert "No schedule" in html
    start = html.index('<form id="run-form"')  # the header's sign-out form comes first
    form = html[start:html.index("</form>", start)]
    assert 'method="post" action="/ui/workflows/greet/runs"' in form
    assert re.search(r'<input type="number"\s+step="any"\s+id="input-amount" name="amount" '
                     r'value=""\s+aria-required="true"', form)
    assert '<label for="input-amount">' in form and "(required)" in form
    assert re.search(r'type="number"\s+step="1"\s+id="input-count" name="count" value="2"', form)
    assert re.search(r'type="text"\s+id="input-name" name="name" value="world"', form)
    assert re.search(r'type="checkbox" id="input-loud" name="loud" value="true">', form)
    assert re.search(r'<textarea id="input-tags" name="tags"[^>]*>\[&#34;a&#34;\]</textarea>',
                     form)
    assert '<label for="input-note">' in form


async def test_workflow_page_shows_its_schedule_and_webhook(ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        html = (await client.get("/ui/workflows/nightly")).text
    triggers = html[html.index('id="schedule-heading"'):html.index('id="run-heading"')]
    assert "cron 0 3 * * * in time zone Europe/Paris; missed runs: catch-up" in triggers
    assert "inputs {&#34;size&#34;: 2}" in triggers
    assert "webhook POST /api/v1/hooks/nightly (secret NIGHTLY_HOOK)" in triggers


async def test_broken_workflow_page_shows_its_errors_on_the_marked_source(
        ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        html = (await client.get("/ui/workflows/broken")).text
    assert "cannot run" in html and 'id="run-form"' not in html
    assert '<li id="L4" class="error-line">' in html
    assert '<a href="#L4">line 4:14</a>' in html


async def test_unknown_workflow_is_an_html_404(ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        page = await client.get("/ui/workflows/nope")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "no workflow named &#39;nope&#39;" in page.text and "loaded workflows:" in page.text


async def test_run_form_starts_a_run_and_redirects_to_it(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        page = await client.post("/ui/workflows/greet/runs",
                                 data={"amount": "12.5", "count": "3", "loud": "true",
                                       "tags": '["x", "y"]', "name": "", "note": ""})
        assert page.status_code == 303
        run_id = page.headers["location"].rsplit("/", 1)[1]
        assert page.headers["location"] == f"/ui/runs/{run_id}"
        await bs.engine.wait(run_id)
        snapshot = await bs.runs.snapshot(run_id)
    assert snapshot.run.inputs == {"amount": 12.5, "name": "world", "count": 3, "loud": True,
                                   "tags": ["x", "y"], "note": None}
    assert snapshot.jobs["hello"].output == {"n": 3}


async def test_run_form_errors_are_shown_next_to_the_field_with_status_422(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        bad = await client.post("/ui/workflows/greet/runs",
                                data={"amount": "lots", "count": "7", "tags": "[1"})
        missing = await client.post("/ui/workflows/greet/runs", data={"count": "7"})
        runs = await bs.store.list_runs()
    assert bad.status_code == 422 and missing.status_code == 422 and runs == []
    field = bad.text[bad.text.index('<div class="field has-error">'):]
    field = field[:field.index('</div>\n    </div>')]
    assert 'id="input-amount"' in field and 'aria-invalid="true"' in field
    assert "input &#39;amount&#39; must be a number, got &#39;lots&#39;" in field
    assert 'value="lots"' in field and 'value="7"' in bad.text  # what was typed stays
    assert "missing required input &#39;amount&#39;" in missing.text


def test_input_errors_name_their_field() -> None:
    assert field_of_error("input 'tags[2]' must be a string, got integer 3") == "tags"
    assert field_of_error("missing required input 'amount' (number)") == "amount"
    assert field_of_error("something else") is None


# --------------------------------------------------------------------------- runs


async def test_runs_list_filters_by_workflow_and_state(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        ok = await finished_run(bs, "greet", amount=1)
        bad = await finished_run(bs, "breaks")
        everything = (await client.get("/ui/runs")).text
        failed = (await client.get("/ui/runs", params={"state": "failed"})).text
        greet = (await client.get("/ui/runs", params={"workflow": "greet"})).text
        wrong = await client.get("/ui/runs", params={"state": "sleepy"})
    assert ok in everything and bad in everything
    assert bad in failed and ok not in failed
    assert '<option value="FAILED" selected>' in failed
    assert ok in greet and bad not in greet
    assert wrong.status_code == 422 and "state &#39;SLEEPY&#39; is not one of" in wrong.text


async def test_runs_list_pages_with_a_cursor_and_htmx_gets_only_the_list(
        ui: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_ui, "PAGE_SIZE", 2)
    async with ui() as (bs, client):
        ids = [await finished_run(bs, "greet", amount=i) for i in range(3)]
        first = (await client.get("/ui/runs")).text
        link = re.search(r'href="/ui/runs\?([^"]+)" rel="next"', first)
        assert link is not None
        second = await client.get("/ui/runs?" + unescape(link.group(1)),
                                  headers={"HX-Request": "true"})
    assert ids[2] in first and ids[1] in first and ids[0] not in first
    assert second.text.lstrip().startswith('<div id="run-list"')
    assert "<html" not in second.text and ids[0] in second.text and ids[2] not in second.text
    assert 'rel="next"' not in second.text and "First page" in second.text
    assert second.headers["vary"] == "HX-Request"


async def test_run_page_shows_graph_timeline_logs_and_a_retry_button(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await finished_run(bs, "breaks")
        html = (await client.get(f"/ui/runs/{run_id}")).text
    assert 'sse-connect' not in html  # finished: nothing to listen to
    assert re.search(r'id="dag-node-first" class="dag-node state-succeeded"', html)
    assert re.search(r'id="dag-node-boom" class="dag-node state-failed"', html)
    assert 'class="timeline"' in html and "boom #1" in html
    log = html[html.index('<details id="log-boom">'):]
    log = log[:log.index("</details>")]
    assert "the disk is on fire" in log
    assert f'action="/ui/runs/{run_id}"' in html
    assert 'name="do" value="retry"' in html and 'name="do" value="cancel"' not in html
    assert re.search(r'name="do" value="rerun"><input type="hidden" name="job" value="first">',
                     html)


async def test_retry_and_rerun_buttons_act_and_redirect_back(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await finished_run(bs, "greet", amount=1)
        rerun = await client.post(f"/ui/runs/{run_id}", data={"do": "rerun", "job": "done"})
        assert rerun.status_code == 303 and rerun.headers["location"] == f"/ui/runs/{run_id}"
        record = await bs.engine.wait(run_id)
        snapshot = await bs.runs.snapshot(run_id)
        assert record.state is RunState.COMPLETED
        assert snapshot.jobs["done"].attempts == 2 and snapshot.jobs["hello"].attempts == 1
        retry = await client.post(f"/ui/runs/{run_id}", data={"do": "retry"})
        cancel = await client.post(f"/ui/runs/{run_id}", data={"do": "cancel"})
    assert retry.status_code == 409 and "only a failed or cancelled run" in retry.text
    assert retry.headers["content-type"].startswith("text/html") and 'role="alert"' in retry.text
    assert cancel.status_code == 409 and "already COMPLETED" in cancel.text


async def test_unknown_run_is_an_html_404(ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        page = await client.get("/ui/runs/nope")
        stream = await client.get("/ui/runs/nope/stream")
    assert page.status_code == 404 and "run &#39;nope&#39; not found" in page.text
    assert stream.status_code == 404


async def test_manual_job_is_completed_from_the_run_page(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await bs.runs.start("approve", {})
        html = await page_when(client, run_id, "Waiting for a result")
        assert "Approve the purchase?" in html
        assert 'name="do" value="complete"' in html and 'name="do" value="fail"' in html
        assert 'name="do" value="cancel"' in html
        bad = await client.post(f"/ui/runs/{run_id}",
                                data={"do": "complete", "job": "ask", "output": "{"})
        assert bad.status_code == 422 and "the output is not JSON" in bad.text
        done = await post_until_accepted(client, f"/ui/runs/{run_id}",
                                         {"do": "complete", "job": "ask",
                                          "output": '{"approved": true}'})
        assert done.status_code == 303
        record = await bs.engine.wait(run_id)
        snapshot = await bs.runs.snapshot(run_id)
    assert record.state is RunState.COMPLETED
    assert snapshot.jobs["ask"].output == {"approved": True, "approver": "admin-tester"}


async def test_manual_job_is_failed_from_the_run_page(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await bs.runs.start("approve", {})
        await page_when(client, run_id, "Waiting for a result")
        await post_until_accepted(client, f"/ui/runs/{run_id}",
                                  {"do": "fail", "job": "ask", "error": "too expensive"})
        record = await bs.engine.wait(run_id)
        snapshot = await bs.runs.snapshot(run_id)
    assert record.state is RunState.FAILED
    assert snapshot.jobs["ask"].state is JobState.FAILED
    assert "too expensive" in (snapshot.jobs["ask"].error or "")


async def page_when(client: httpx.AsyncClient, run_id: str, text: str) -> str:
    """The run page once it shows `text` (the engine runs concurrently with the test)."""
    for _ in range(2000):
        html = (await client.get(f"/ui/runs/{run_id}")).text
        if text in html:
            return html
        await asyncio.sleep(0.01)
    raise AssertionError(f"the run page never showed {text!r}")


async def post_until_accepted(client: httpx.AsyncClient, url: str,
                              data: dict[str, str]) -> httpx.Response:
    """POST until the job's attempt is waiting (409 'not waiting yet' before that)."""
    for _ in range(2000):
        page = await client.post(url, data=data)
        if page.status_code != 409:
            return page
        await asyncio.sleep(0.01)
    raise AssertionError(f"{url} kept answering 409")


# --------------------------------------------------------------------------- live updates


def sse_events(body: str) -> list[tuple[str, str]]:
    events = []
    for block in body.split("\n\n"):
        lines = block.splitlines()
        name = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
        if name:
            events.append((name, "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))))
    return events


async def test_stream_of_a_finished_run_sends_its_blocks_then_done(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await finished_run(bs, "breaks")
        page = await client.get(f"/ui/runs/{run_id}/stream")
    assert page.headers["content-type"].startswith("text/event-stream")
    events = sse_events(page.text)
    assert [name for name, _ in events] == ["header", "graph", "jobs", "done"]
    graph = dict(events)["graph"]
    assert 'id="dag-node-boom" class="dag-node state-failed"' in graph
    assert "<html" not in graph and "sse-swap" not in graph


async def test_stream_follows_a_live_run_until_it_finishes(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await bs.runs.start("approve", {})
        html = (await client.get(f"/ui/runs/{run_id}")).text
        assert f'sse-connect="/ui/runs/{run_id}/stream" sse-close="done"' in html
        assert 'sse-swap="graph"' in html and 'sse-swap="jobs"' in html
        stream = asyncio.create_task(client.get(f"/ui/runs/{run_id}/stream"))
        await page_when(client, run_id, "Waiting for a result")
        await post_until_accepted(client, f"/ui/runs/{run_id}", {"do": "complete", "job": "ask"})
        body = (await stream).text
    events = sse_events(body)
    assert events[-1][0] == "done"
    graphs = [data for name, data in events if name == "graph"]
    assert len(graphs) >= 2
    assert 'id="dag-node-after" class="dag-node state-succeeded"' in graphs[-1]
    assert 'class="dag-node state-succeeded"' not in graphs[0].split('id="dag-node-after"')[1][:60]


# --------------------------------------------------------------------------- templates


async def test_templates_page_lists_versions_and_diffs_two_of_them(
        ui: Callable[..., Any]) -> None:
    from baseshift.core.templatestore import parse_document

    def doc(version: str, required: list[str]) -> Any:
        return parse_document({
            "name": "greeter", "version": version, "description": f"v{version}",
            "steps": [{"name": "say", "type": "shell", "config": {"command": "echo hi"}}],
            "inputSchema": {"type": "object", "required": required,
                            "properties": {"who": {"type": "string"},
                                           "lang": {"type": "string"}}}})

    async with ui() as (bs, client):
        assert bs.templates is not None
        await bs.templates.publish(doc("1.0.0", ["who"]))
        await bs.templates.publish(doc("2.0.0", ["who", "lang"]))
        listing = (await client.get("/ui/templates")).text
        page = (await client.get("/ui/templates/greeter")).text
        fragment = await client.get("/ui/templates/greeter", params={"from": "2.0.0",
                                                                     "to": "2.0.0"},
                                    headers={"HX-Request": "true"})
        missing = await client.get("/ui/templates/nope")
    assert 'href="/ui/templates/greeter"' in listing and "1.0.0, 2.0.0" in listing
    assert "1.0.0 → 2.0.0" in page
    assert re.search(r"<li>[^<]*lang[^<]*</li>", page), "the new required input breaks callers"
    assert "+      &#34;lang&#34;" in page and "-  &#34;description&#34;: &#34;v1.0.0&#34;," in page
    assert fragment.text.lstrip().startswith('<div id="diff-result"')
    assert "identical apart from their version" in fragment.text
    assert missing.status_code == 404


async def test_templates_page_says_so_when_there_is_no_template_store(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        bs.templates = None
        html = (await client.get("/ui/templates")).text
    assert "no template store" in html


# --------------------------------------------------------------------------- validate


async def test_validate_shows_errors_in_place_and_htmx_gets_only_the_result(
        ui: Callable[..., Any]) -> None:
    source = 'workflow x {\n  version "1"\n  job a uses shel { with { command: "<b>" } }\n}\n'
    async with ui() as (_, client):
        full = await client.post("/ui/validate", data={"source": source})
        part = await client.post("/ui/validate", data={"source": source},
                                 headers={"HX-Request": "true"})
    assert full.status_code == 200 and "<!DOCTYPE html>" in full.text
    assert "&lt;b&gt;" in full.text and "<b>" not in full.text.split("<textarea")[1]
    fragment = part.text
    assert fragment.lstrip().startswith('<section id="validate-result"')
    assert "there is no executor &#39;shel&#39;" in fragment
    assert '<a href="#L3">line 3:14</a>' in fragment
    assert '<li id="L3" class="error-line">' in fragment
    assert "hint: did you mean &#39;shell&#39;?" in fragment


async def test_validate_a_good_workflow_draws_its_graph(ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        page = await client.post("/ui/validate", data={"source": GREET},
                                 headers={"HX-Request": "true"})
    assert "Workflow <code>greet</code> 1.0.0 checks: 2 jobs." in page.text
    assert 'id="dag-pasted-node-hello"' in page.text


# --------------------------------------------------------------------------- overrides


async def test_a_plugin_template_overrides_a_page_and_extends_the_default(
        ui: Callable[..., Any], tmp_path: Path) -> None:
    folder = tmp_path / "overrides"
    folder.mkdir()
    (folder / "dashboard.html").write_text(
        '{% extends "default:dashboard.html" %}'
        "{% block content %}<p id=\"custom\">Ops team</p>{{ super() }}{% endblock %}")
    async with ui(extra={"web": {"template_dirs": [str(folder)]}}) as (_, client):
        html = (await client.get("/")).text
    assert '<p id="custom">Ops team</p>' in html and "Runs by state" in html


def test_highlighting_escapes_everything_it_does_not_wrap() -> None:
    line = highlight_line('job a uses shell { with { command: "<i>${x}</i>" } } # <b>')
    assert "<i>" not in line and "<b>" not in line
    assert '<span class="tok-interp">${x}</span>' in line
    assert '<span class="tok-comment"># &lt;b&gt;</span>' in line


# --------------------------------------------------------------------------- issue 10 defects


async def test_a_refused_answer_keeps_the_text_next_to_its_field_at_the_run_pages_url(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await bs.runs.start("approve", {})
        waiting = await page_when(client, run_id, "Waiting for a result")
        form = {"do": "complete", "job": "ask", "output": '{"approved": tru'}
        page = await post_until_accepted(client, f"/ui/runs/{run_id}", form)
        fragment = await client.post(f"/ui/runs/{run_id}", data=form,
                                     headers={"HX-Request": "true"})
        again = await client.get(f"/ui/runs/{run_id}")
        await post_until_accepted(client, f"/ui/runs/{run_id}", {"do": "fail", "job": "ask"})
    # No JavaScript: the run page itself answers (its URL reloads), the text is kept and the
    # error sits in the field, not in a live block that the next update replaces.
    assert page.status_code == 422 and again.status_code == 200
    field = page.text[page.text.index('<div class="field has-error">'):]
    field = field[:field.index("</form>")]
    assert 'id="output-ask"' in field and 'aria-invalid="true"' in field
    assert ">{&#34;approved&#34;: tru</textarea>" in field
    assert 'class="field-error" role="alert">the output is not JSON' in field
    header = page.text[page.text.index('id="run-header"'):page.text.index('id="run-graph"')]
    assert "not JSON" not in header
    # htmx: only that job's forms come back, refused with 422 (which the page swaps in).
    assert fragment.status_code == 422
    assert fragment.text.lstrip().startswith('<div class="waiting-forms" id="waiting-ask-forms">')
    assert "<html" not in fragment.text and "tru</textarea>" in fragment.text
    other = 'aria-describedby="error-ask-help"\n             value="rejected in the web UI">'
    assert other in fragment.text, "the form that was not refused keeps its own default"
    assert '{"code": "422", "swap": true}' in waiting
    # Live updates keep the panel (and what is typed in it); no reload while a job waits.
    assert re.search(r'<div class="panel waiting" id="waiting-ask" hx-preserve', waiting)
    assert 'http-equiv="refresh"' not in waiting


async def test_an_htmx_answer_to_a_job_that_no_longer_waits_is_swapped_in(
        ui: Callable[..., Any]) -> None:
    """The refusal (409: the job no longer waits) answers htmx with a status the page's htmx
    config swaps, so the browser shows the line instead of throwing the answer away."""
    async with ui() as (bs, client):
        run_id = await bs.runs.start("approve", {})
        waiting = await page_when(client, run_id, "Waiting for a result")
        await post_until_accepted(client, f"/ui/runs/{run_id}", {"do": "fail", "job": "ask"})
        late = await client.post(f"/ui/runs/{run_id}", data={"do": "complete", "job": "ask"},
                                 headers={"HX-Request": "true"})
        plain = await client.post(f"/ui/runs/{run_id}", data={"do": "complete", "job": "ask"})
    assert late.status_code == 200
    assert late.text.lstrip().startswith('<div class="waiting-forms" id="waiting-ask-forms">')
    assert "<html" not in late.text and "no longer waits" in late.text
    assert '{"code": "[23]..", "swap": true}' in waiting
    assert plain.status_code == 409 and "<html" in plain.text


async def test_an_htmx_answer_to_a_waiting_job_lays_out_no_graph(
        ui: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the job's forms come back: the run's plan finds the row, no graph is laid out."""
    def no_layout(*args: Any) -> Any:
        raise AssertionError("the htmx answer laid out the run's graph")

    async with ui() as (bs, client):
        run_id = await bs.runs.start("approve", {})
        await page_when(client, run_id, "Waiting for a result")
        monkeypatch.setattr(runs_ui, "layout_plan", no_layout)
        refused = await client.post(f"/ui/runs/{run_id}", headers={"HX-Request": "true"},
                                    data={"do": "complete", "job": "ask", "output": "{"})
        monkeypatch.undo()
        await post_until_accepted(client, f"/ui/runs/{run_id}", {"do": "fail", "job": "ask"})
    assert refused.status_code == 422 and "the output is not JSON" in refused.text


async def test_a_refused_action_shows_its_reason_outside_the_live_blocks(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await bs.runs.start("approve", {})
        await page_when(client, run_id, "Waiting for a result")
        page = await client.post(f"/ui/runs/{run_id}", data={"do": "rerun", "job": "ask"})
        unknown = await client.post(f"/ui/runs/{run_id}", data={"do": "dance"})
        await post_until_accepted(client, f"/ui/runs/{run_id}", {"do": "fail", "job": "ask"})
    assert page.status_code == 409 and 'sse-connect' in page.text
    assert page.text.index('id="run-message"') < page.text.index('id="run-live"')
    assert unknown.status_code == 422 and "no action &#39;dance&#39;" in unknown.text


async def test_source_listings_have_no_text_between_their_lines(
        ui: Callable[..., Any]) -> None:
    broken = 'workflow x {\n  version "1"\n  job a uses shel { with { command: "x" } }\n}\n'
    async with ui() as (_, client):
        pages = [(await client.get("/ui/workflows/greet")).text,
                 (await client.get("/ui/workflows/broken")).text,
                 (await client.post("/ui/validate", data={"source": broken})).text]
        css = (await client.get("/static/baseshift.css")).text
    for html in pages:
        listing = html[html.index('<ol class="source"'):]
        listing = listing[:listing.index("</ol>")]
        assert listing.count("<li ") > 3
        assert re.search(r">\s+<li", listing) is None and re.search(r"</li>\s+<", listing) is None
    rule = css[css.index("ol.source {"):]
    assert "white-space: pre" not in rule[:rule.index("}")], "pre on the list shows its markup"


async def test_a_skipped_jobs_reason_is_not_styled_as_an_error(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await finished_run(bs, "sometimes")
        failed = await finished_run(bs, "breaks")
        html = (await client.get(f"/ui/runs/{run_id}")).text
        broken = (await client.get(f"/ui/runs/{failed}")).text
    never = html[html.index('id="job-never"'):]
    never = never[:never.index("</article>")]
    assert '<p class="reason">skipped: condition is false</p>' in never
    assert "error-message" not in never
    boom = broken[broken.index('id="job-boom"'):]
    assert '<p class="error-message">' in boom[:boom.index("</article>")]
    after = broken[broken.index('id="job-after"'):]
    assert '<p class="reason">cancelled: upstream job' in after[:after.index("</article>")]


async def test_unknown_ui_addresses_are_html_pages_and_api_ones_stay_problem_json(
        ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        missing = await client.get("/ui/nowhere/at/all")
        wrong_method = await client.get("/ui/workflows/greet/runs")
        api = await client.get("/api/v1/nowhere")
    for page, status in ((missing, 404), (wrong_method, 405)):
        assert page.status_code == status
        assert page.headers["content-type"].startswith("text/html")
        assert page.text.startswith("<!DOCTYPE html>") and 'class="skip-link"' in page.text
        assert 'role="alert"' in page.text
    assert "<h1>Not found</h1>" in missing.text
    assert "<h1>Method not allowed</h1>" in wrong_method.text
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_a_failing_page_is_an_error_page_and_its_5xx_is_logged(
        ui: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A core 5xx (the store failed) and an unexpected exception in a page's view are pages
    in the site's layout, logged like the API's; the API keeps problem+json."""
    async with ui() as (bs, made):
        async def store_fails(*args: Any) -> Any:
            raise StoreError("the disk is full")

        async def view_breaks(*args: Any) -> Any:
            raise RuntimeError("a bug in a view")

        # The app re-raises an unexpected error after answering; this client keeps the answer.
        transport = httpx.ASGITransport(app=create_app(baseshift=bs), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost",
                                     headers=made.headers) as client:
            monkeypatch.setattr(bs.store, "count_runs_by_state", store_fails)
            store = await client.get("/")
            monkeypatch.setattr(bs.store, "query_runs", view_breaks)
            broken = await client.get("/ui/runs")
            api = await client.get("/api/v1/workflows")
    assert store.status_code == 503 and "<h1>Error</h1>" in store.text
    assert "the disk is full" in store.text and store.text.startswith("<!DOCTYPE html>")
    assert "GET /: the disk is full" in caplog.text
    assert broken.status_code == 500 and "<h1>Server error</h1>" in broken.text
    assert "see the server log" in broken.text and "a bug in a view" not in broken.text
    assert "unhandled error on GET /ui/runs" in caplog.text
    assert api.status_code == 500
    assert api.headers["content-type"] == "application/problem+json"


async def test_an_error_page_shows_the_address_as_text_never_markup(
        ui: Callable[..., Any]) -> None:
    async with ui() as (_, client):
        missing = await client.get("/ui/%3Cscript%3Ealert(1)%3C/script%3E")
        wrong_method = await client.patch("/ui/runs/%3Cimg%20src=x%20onerror=alert(1)%3E")
    for page in (missing, wrong_method):
        assert page.headers["content-type"].startswith("text/html")
        assert "<script>alert" not in page.text and "<img src=x" not in page.text


async def test_every_page_links_a_favicon_that_is_served(ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await finished_run(bs, "breaks")
        pages = [(await client.get(url)).text for url in (
            "/", "/ui/workflows", "/ui/workflows/greet", "/ui/runs", f"/ui/runs/{run_id}",
            "/ui/templates", "/ui/validate", "/ui/nowhere")]
        icon = await client.get("/static/favicon.svg")
        legacy = await client.get("/favicon.ico")
    for html in pages:
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert legacy.status_code == 301 and legacy.headers["location"] == "/static/favicon.svg"


async def test_fan_out_items_are_grouped_under_their_job_with_counts(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await finished_run(bs, "sometimes", size=40)
        html = (await client.get(f"/ui/runs/{run_id}")).text
    group = html[html.index('<details class="panel fanout" id="job-square">'):]
    group = group[:group.index("</ol>")]
    summary = group[:group.index("</summary>")]
    assert "40 items:" in summary
    assert '<span class="count state-succeeded" data-state="SUCCEEDED">40 succeeded</span>' \
        in summary
    assert all(f'id="job-square-{i}-"' in group for i in range(40))
    assert html.count('<article class="panel job"') == 3 + 40  # first, never, square, items
    items = group.index('<ol class="fanout-items"')
    assert all(group.index(f'id="job-square-{i}-"') > items for i in range(40))


async def test_graph_nodes_link_to_what_the_page_shows_of_their_job(
        ui: Callable[..., Any]) -> None:
    async with ui() as (bs, client):
        run_id = await finished_run(bs, "sometimes")
        pages = {"run": (await client.get(f"/ui/runs/{run_id}")).text,
                 "workflow": (await client.get("/ui/workflows/greet")).text}
    for name, html in pages.items():
        svg = html[html.index("<svg"):html.index("</svg>")]
        links = re.findall(r'<a class="dag-link" href="#([^"]+)"', svg)
        assert len(links) == svg.count('class="dag-node'), name
        assert all(f'id="{target}"' in html for target in links), name
        assert 'role="group"' in svg
    assert 'href="#job-square"' in pages["run"] and 'href="#job-never"' in pages["run"]
    assert 'href="#L14"' in pages["workflow"]  # `job hello` is declared on line 14
