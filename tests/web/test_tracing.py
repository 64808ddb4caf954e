"""OpenTelemetry traces (plugins/tracing): a run started through the API gives a server
span, a run span and an attempt span per job attempt, linked as request → run → attempts; the
attempt's trace context reaches an `http` step's request and a shell step's environment,
and the run page shows the trace id. Off unless configured."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.errors import ConfigError
from baseshift.core.logcontext import log_fields
from baseshift.core.protocols import JobContext
from baseshift.core.records import RunRecord
from baseshift.core.registry import extra
from baseshift.core.storecalls import ObservedStore
from baseshift.core.tracecontext import TRACE_URL, run_trace, run_trace_id, traceparent
from baseshift.plugins.tracing import plugin as tracing_plugin
from baseshift.plugins.tracing.plugin import tracing_of
from tests.attempt_support import UNSET, tried_plan
from tests.log_support import json_log
from tests.plugins.loopback_http import running_server
from tests.web.api_support import API, finished, start

SECRET_INPUT = "s3cret-input-value"
TRACED = """
workflow traced {
  version "1.0.0"
  input { url: string, note: string = "s3cret-input-value" }
  job call uses http {
    with { url: input.url, headers: { x_note: input.note } }
  }
  job show uses shell {
    needs call
    with { command: "echo $TRACEPARENT" }
  }
  job note uses python { with { function: "traced_steps:note" } }
}
"""
STEPS = """
import logging

def note():
    logging.getLogger("baseshift.step").info("a line logged by a step")
    return 1
"""
MEMORY = {"tracing": {"exporter": "memory",
                      "trace_url": "https://jaeger.example/trace/{trace_id}?a=1&b=2"}}
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")


def _traced(workflows_dir: Path) -> Path:
    (workflows_dir / "traced.bsw").write_text(TRACED)
    (workflows_dir / "traced_steps.py").write_text(STEPS)
    return workflows_dir


async def test_a_run_through_the_api_is_one_trace_of_request_run_and_attempts(
        make_client: Callable[..., Any], workflows_dir: Path) -> None:
    with running_server() as loopback, json_log(logging.DEBUG) as (lines, _raw):
        async with make_client(workflows=_traced(workflows_dir), extra=MEMORY) as (bs, client):
            tracing = tracing_of(bs)
            assert tracing is not None
            response = await client.post(f"{API}/workflows", headers={"traceparent": CALLER},
                                         json={"workflow": "traced",
                                               "inputs": {"url": f"{loopback.url}/echo"}})
            assert response.status_code == 201, response.text
            run_id = response.json()["workflow_id"]
            run = await finished(client, run_id)
            assert run["status"] == "COMPLETED", run
            outputs = {j["name"]: j["output"] for j in
                       (await client.get(f"{API}/workflows/{run_id}/jobs")).json()}
            page = await client.get(f"/ui/runs/{run_id}")
            spans = list(tracing.finished_spans())

    by_name = {s.name: s for s in spans}
    request = by_name["POST /api/v1/workflows"]
    assert request.parent is not None and f"{request.parent.span_id:016x}" == CALLER[36:52]
    assert f"{request.context.trace_id:032x}" == CALLER[3:35]
    assert request.attributes is not None
    assert request.attributes["baseshift.run_id"] == run_id
    assert request.attributes["http.response.status_code"] == 201

    # the request's store operations are its children; the engine's own rounds (no span
    # current) have none
    create = by_name["store create_run"]
    assert create.parent is not None and create.parent.span_id == request.context.span_id
    assert create.attributes is not None
    assert (create.attributes["db.operation.name"], create.attributes["baseshift.store"]) == \
        ("create_run", "memory")
    assert all(s.parent is not None for s in spans if s.name.startswith("store "))

    trace_id, run_span_id = run_trace(run_id)
    root = by_name["run traced"]
    assert (root.context.trace_id, root.context.span_id) == (trace_id, run_span_id)
    assert root.parent is None
    assert [link.context.span_id for link in root.links] == [request.context.span_id]
    for job in ("call", "show", "note"):
        attempt = by_name[f"job {job}"]
        assert attempt.context.trace_id == trace_id
        assert attempt.parent is not None and attempt.parent.span_id == run_span_id
        assert attempt.start_time is not None and root.start_time is not None
        assert root.start_time <= attempt.start_time

    # the http step's request and the shell step's environment carry the attempt's span
    call, show = by_name["job call"].context, by_name["job show"].context
    assert outputs["call"]["body"]["headers"]["traceparent"] == \
        f"00-{trace_id:032x}-{call.span_id:016x}-01"
    assert outputs["show"]["stdout"].strip() == f"00-{trace_id:032x}-{show.span_id:016x}-01"

    # a line logged during an attempt carries its span; the access line the caller's
    (step_line,) = [x for x in lines() if x["message"] == "a line logged by a step"]
    assert (step_line["trace_id"], step_line["span_id"]) == \
        (f"{trace_id:032x}", f"{by_name['job note'].context.span_id:016x}")
    (access,) = [x for x in lines() if x.get("route") == "/api/v1/workflows"]
    assert (access["trace_id"], access["span_id"]) == (CALLER[3:35], CALLER[36:52])

    # no input, URL or secret in any attribute
    for span in spans:
        for value in (span.attributes or {}).values():
            assert SECRET_INPUT not in str(value) and loopback.url not in str(value), span.name

    # the run page shows the trace id, linked through trace_url (escaped)
    assert page.status_code == 200
    assert (f'href="https://jaeger.example/trace/{trace_id:032x}?a=1&amp;b=2"'
            in page.text), page.text


async def test_a_request_s_audit_and_sign_in_reads_are_store_spans_under_it(
        make_client: Callable[..., Any]) -> None:
    """Every store operation a request makes is its child span, not only the runs': here
    the audit log's page and a sign-in's user lookup."""
    async with make_client(extra=MEMORY) as (bs, client):
        tracing = tracing_of(bs)
        assert tracing is not None
        assert (await client.get(f"{API}/audit-logs")).status_code == 200
        assert (await client.post("/api/v1/auth/login", json={
            "username": "nobody", "password": "wrong"})).status_code == 401
        spans = list(tracing.finished_spans())
    requests = {s.context.span_id: s.name for s in spans if not s.name.startswith("store ")}
    under = {(requests.get(s.parent.span_id if s.parent else 0), s.name) for s in spans
             if s.name.startswith("store ")}
    assert {("GET /api/v1/audit-logs", "store audit_page"),
            ("POST /api/v1/auth/login", "store get_user")} <= under
    assert None not in {request for request, _ in under}


async def test_tracing_is_off_unless_configured(
        make_client: Callable[..., Any], workflows_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACEPARENT", raising=False)
    with running_server() as loopback:
        async with make_client(workflows=_traced(workflows_dir)) as (bs, client):
            assert tracing_of(bs) is None and TRACE_URL not in bs.stash
            per_attempt = [*bs.pm.hook.job_wrapper.get_hookimpls(),
                           *bs.pm.hook.track_event.get_hookimpls()]
            assert not [i for i in per_attempt if "tracing" in i.plugin_name]
            store = bs.store
            assert isinstance(store, ObservedStore) and "tracing" not in store.calls.listeners
            run_id = await start(client, "traced", {"url": f"{loopback.url}/echo"})
            assert (await finished(client, run_id))["status"] == "COMPLETED"
            outputs = {j["name"]: j["output"] for j in
                       (await client.get(f"{API}/workflows/{run_id}/jobs")).json()}
            page = await client.get(f"/ui/runs/{run_id}")
    assert "traceparent" not in outputs["call"]["body"]["headers"]
    assert outputs["show"]["stdout"].strip() == "", outputs
    assert run_trace_id(run_id) not in page.text


async def test_an_attempt_binds_its_trace_to_log_lines_and_outgoing_calls(
        make_client: Callable[..., Any]) -> None:
    async with make_client(extra=MEMORY) as (bs, _client):
        tracing = tracing_of(bs)
        assert tracing is not None
        run = RunRecord("r-1", "w", "1.0.0", "", "", {})
        assert traceparent() is None
        with tracing.attempt(run, JobContext(run_id="r-1", job="j", attempt=2,
                                                   config={})):
            fields, parent = dict(log_fields()), traceparent()
        assert traceparent() is None and "trace_id" not in log_fields()
    assert fields["trace_id"] == run_trace_id("r-1")
    match = TRACEPARENT.fullmatch(parent or "")
    assert match is not None
    assert (match[1], match[2]) == (fields["trace_id"], fields["span_id"])


@pytest.mark.parametrize("runtime", ["contextvars", "another"])
def test_an_attempt_span_is_current_in_the_context_it_entered_and_leaves_it_as_it_was(
        monkeypatch: pytest.MonkeyPatch, runtime: str) -> None:
    """The span is bound through the runtime context's own ContextVar when the runtime is
    OpenTelemetry's default (spans.py `_current_context`), through the API otherwise
    (`OTEL_PYTHON_CONTEXT`); either way what the context held stays there (a baggage entry
    here), the span is the current one inside, and the context is the same one after."""
    from opentelemetry import baggage, trace
    from opentelemetry import context as otel_context
    from opentelemetry.context.context import _RuntimeContext

    from baseshift.plugins.tracing import spans

    class Another(_RuntimeContext):  # a runtime context of a plugin: a plain stack
        def __init__(self) -> None:
            self.stack = [otel_context.Context()]

        def attach(self, context: otel_context.Context) -> Any:
            self.stack.append(context)
            return len(self.stack) - 1

        def get_current(self) -> otel_context.Context:
            return self.stack[-1]

        def detach(self, token: Any) -> None:
            del self.stack[token:]

    if runtime == "another":
        monkeypatch.setattr(otel_context, "_RUNTIME_CONTEXT", Another())
        made = spans._current_context()
        assert made == (otel_context.get_current, otel_context.attach, otel_context.detach)
        monkeypatch.setattr(spans, "_get_context", made[0])
        monkeypatch.setattr(spans, "_set_context", made[1])
        monkeypatch.setattr(spans, "_reset_context", made[2])
    tracing = spans.Tracing("memory", "", "bound")
    token = otel_context.attach(baggage.set_baggage("tenant", "t-1"))
    try:
        before = otel_context.get_current()
        with tracing.attempt(RunRecord("r-7", "w", "1.0.0", "", "", {}),
                             JobContext("r-7", "j", 1, {})):
            inside = trace.get_current_span()
            assert baggage.get_baggage("tenant") == "t-1"
            assert inside.is_recording() and f"{inside.get_span_context().trace_id:032x}" \
                == run_trace_id("r-7")
        assert otel_context.get_current() is before
        assert trace.get_current_span() is trace.INVALID_SPAN
        [span] = tracing.finished_spans()
        assert span.context == inside.get_span_context() and span.name == "job j"
    finally:
        otel_context.detach(token)
        tracing.close()


async def test_a_failed_attempt_is_an_error_span_and_a_cancelled_one_is_not(
        make_client: Callable[..., Any]) -> None:
    import asyncio

    from opentelemetry.trace import StatusCode

    async with make_client(extra=MEMORY) as (bs, _client):
        tracing = tracing_of(bs)
        assert tracing is not None
        run = RunRecord("r-1", "w", "1.0.0", "", "", {})
        with pytest.raises(ValueError, match="step broke"):
            with tracing.attempt(run, JobContext("r-1", "bad", 1, {})):
                raise ValueError("step broke")
        with pytest.raises(asyncio.CancelledError):
            with tracing.attempt(run, JobContext("r-1", "gone", 1, {})):
                raise asyncio.CancelledError
        assert traceparent() is None and "trace_id" not in log_fields()
        spans = {s.name: s for s in tracing.finished_spans()}
    assert spans["job bad"].status.status_code is StatusCode.ERROR
    assert [e.name for e in spans["job bad"].events] == ["exception"]
    assert spans["job gone"].status.status_code is StatusCode.UNSET
    assert not spans["job gone"].events


async def test_an_attempt_is_one_span_whatever_its_steps_and_a_timeout_is_an_error(
        make_baseshift: Callable[..., Any], tmp_path: Path) -> None:
    """A template's two steps are one attempt span; an attempt that timed out, or whose
    config could not be rendered, is an error span with the failure recorded on it."""
    from opentelemetry.trace import StatusCode

    async with make_baseshift(extra=MEMORY) as bs:
        await bs.engine.wait(await bs.engine.submit(tried_plan(bs, tmp_path), {}))
        tracing = tracing_of(bs)
        assert tracing is not None
        spans = [s for s in tracing.finished_spans() if s.name.startswith("job ")]
    assert sorted(s.name for s in spans) == ["job slow", "job steps", "job unset"]
    by_name = {s.name: s for s in spans}
    assert by_name["job steps"].status.status_code is StatusCode.UNSET
    for name, failure in (("job slow", "timed out after 0.2s"),
                          ("job unset", UNSET)):
        span = by_name[name]
        assert span.status.status_code is StatusCode.ERROR, name
        assert [e.name for e in span.events] == ["exception"]
        assert span.events[0].attributes is not None
        assert failure in str(span.events[0].attributes["exception.message"])


async def test_an_attempt_span_ended_inside_the_attempt_is_exported_once() -> None:
    """A step may end the current span itself (`trace.get_current_span().end()`): the
    attempt's span is then exported once, with the end the step gave it."""
    from opentelemetry import trace

    from baseshift.plugins.tracing.spans import Tracing

    tracing = Tracing("memory", "", "ended")
    try:
        with tracing.attempt(RunRecord("r-1", "w", "1.0.0", "", "", {}),
                             JobContext("r-1", "j", 1, {})):
            trace.get_current_span().end(end_time=123)
        spans = tracing.finished_spans()
    finally:
        tracing.close()
    assert [(s.name, s.end_time) for s in spans] == [("job j", 123)]


async def test_a_sample_ratio_records_whole_runs_chosen_by_their_trace_id() -> None:
    """Every process decides alike for a run (its trace id comes from the run id): a run's
    attempts are all recorded, or none is, and an unrecorded one still passes its trace on
    (flagged not sampled)."""
    from baseshift.plugins.tracing.spans import Tracing

    tracing = Tracing("memory", "", "sampled", 0.5)
    ids = [f"run-{i}" for i in range(40)]
    sent: dict[str, str | None] = {}
    try:
        for run_id in ids:
            run = RunRecord(run_id, "w", "1.0.0", "", "", {})
            for attempt in (1, 2):
                with tracing.attempt(run, JobContext(run_id, "j", attempt, {})):
                    sent[run_id] = traceparent()
        recorded = [s.attributes["baseshift.run_id"]  # type: ignore[index]
                    for s in tracing.finished_spans()]
    finally:
        tracing.close()
    chosen = [r for r in ids if run_trace(r)[0] % 2**64 < 2**63]
    assert 0 < len(chosen) < len(ids)
    assert recorded == [r for r in chosen for _ in (1, 2)]
    for run_id in ids:
        assert (sent[run_id] or "").startswith(f"00-{run_trace_id(run_id)}-")
        assert (sent[run_id] or "").endswith("-01" if run_id in chosen else "-00")


def test_tracing_configured_without_the_extra_names_the_pip_command(
        make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from baseshift.core.app.application import BaseShift
    from baseshift.core.settings import Settings

    monkeypatch.setattr(tracing_plugin, "OTEL", extra("otel", "no_such_module_for_otel"))
    with pytest.raises(ConfigError) as raised:
        BaseShift(Settings(load_entrypoints=False, store="memory", templates="memory",
                           extra={"tracing": {"endpoint": "http://127.0.0.1:4318/v1/traces"}}))
    assert "pip install 'baseshift[otel]'" in str(raised.value.hint)


@pytest.mark.parametrize("options", [{"exporter": "jaeger"}, {"endpoint": "collector:4318"},
                                     {"exporter": "memory", "trace_url": "https://x/"},
                                     {"exporter": "memory", "sample_ratio": 1.5},
                                     {"exporter": "memory", "sample_ratio": 0}])
def test_a_wrong_tracing_option_fails_the_start(options: dict[str, str]) -> None:
    from baseshift.core.app.application import BaseShift
    from baseshift.core.settings import Settings

    with pytest.raises(ConfigError):
        BaseShift(Settings(load_entrypoints=False, store="memory", templates="memory",
                           extra={"tracing": options}))


async def test_an_attempt_span_is_exported_as_the_sdk_s_spans_and_parents_them() -> None:
    """The attempt span (plugins/tracing/quick.py, made without the SDK's per-span work)
    reaches the exporter as the SDK's spans do: same resource and scope, OTLP-encodable, with
    what code under it added (attributes, events); a store span made under it is its child."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from baseshift.plugins.tracing.spans import Tracing

    tracing = Tracing("memory", "", "quick", 1.0)
    run = RunRecord("r-9", "w", "1.0.0", "", "", {})
    try:
        with tracing.attempt(run, JobContext("r-9", "j", 3, {})):
            current = trace.get_current_span()
            assert current.is_recording()
            current.set_attribute("step.note", "added")
            current.add_event("checkpoint", {"n": 1})
            store = tracing.store_call("sqlite", "load_run")
            assert store is not None
            with store:
                pass
        spans = {s.name: s for s in tracing.finished_spans()}
    finally:
        tracing.close()
    job, child = spans["job j"], spans["store load_run"]
    assert child.parent is not None and child.parent.span_id == job.context.span_id
    assert child.context.trace_id == job.context.trace_id == run_trace("r-9")[0]
    assert job.parent is not None and job.parent.span_id == run_trace("r-9")[1]
    assert job.resource == child.resource and job.resource.attributes["service.name"] == "quick"
    assert job.instrumentation_scope == child.instrumentation_scope
    assert dict(job.attributes or {}) == {
        "baseshift.run_id": "r-9", "baseshift.workflow": "w", "baseshift.job": "j",
        "baseshift.attempt": 3, "step.note": "added"}
    assert [(e.name, dict(e.attributes or {})) for e in job.events] == [("checkpoint", {"n": 1})]
    assert job.start_time is not None and job.end_time is not None
    assert child.start_time is not None and child.end_time is not None
    assert job.start_time <= child.start_time <= child.end_time <= job.end_time
    (resource,) = encode_spans([job, child]).resource_spans
    (scope,) = resource.scope_spans
    assert sorted(s.name for s in scope.spans) == ["job j", "store load_run"]


FAILING = """
workflow leaky {
  version "1.0.0"
  job use uses python { with { function: "leaky_steps:use", token: "${secret.TRACE_TOKEN}" } }
}
"""
LEAKY_STEPS = """
def use(token):
    raise RuntimeError("the service refused " + token)
"""
TRACE_TOKEN = "tok-27182-never-in-a-trace"


async def test_an_attempt_span_of_a_failure_never_holds_a_secret(
        make_client: Callable[..., Any], workflows_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_TRACE_TOKEN", TRACE_TOKEN)
    (workflows_dir / "leaky.bsw").write_text(FAILING)
    (workflows_dir / "leaky_steps.py").write_text(LEAKY_STEPS)
    async with make_client(workflows=workflows_dir, extra=MEMORY) as (bs, client):
        tracing = tracing_of(bs)
        assert tracing is not None
        run_id = await start(client, "leaky")
        assert (await finished(client, run_id))["status"] == "FAILED"
        spans = list(tracing.finished_spans())
    attempt = next(s for s in spans if s.name == "job use")
    event = next(e for e in attempt.events if e.name == "exception")
    assert event.attributes["exception.message"].endswith("the service refused ***")
    assert "the service refused ***" in event.attributes["exception.stacktrace"]
    assert attempt.status.description.endswith("the service refused ***")
    assert TRACE_TOKEN not in "".join(s.to_json() for s in spans)
