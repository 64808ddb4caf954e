"""One test per hook: an ad-hoc plugin implements it and the core honours it."""
from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import engine_samples as samples
import pytest
from plans import job

from baseshift.core import hookimpl
from baseshift.core.app.application import BaseShift
from baseshift.core.diagnostics import Diagnostic
from baseshift.core.errors import ConfigError, Conflict, PluginError
from baseshift.core.events import JobStateChanged, RunStateChanged
from baseshift.core.expr import Attr, Literal, Name, ObjectExpr
from baseshift.core.plan import JobSpec, Plan
from baseshift.core.protocols import JobContext, JobResult
from baseshift.core.records import RunRecord
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.plugins.storage.memory import MemoryStateStore
from tests.attempt_support import UNSET, tried_plan


class Upper:
    name: ClassVar[str] = "upper"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object",
                                               "properties": {"text": {"type": "string"}}}

    async def execute(self, ctx: JobContext) -> JobResult:
        return JobResult(output=ctx.config["text"].upper())


def upper_job(name: str = "u", text: str = "hi") -> JobSpec:
    return JobSpec(name, "upper", ObjectExpr((("text", Literal(text)),)))


async def run(bs: BaseShift, plan: Plan) -> Any:
    run_id = await bs.engine.submit(plan, {})
    await bs.engine.wait(run_id)
    return await bs.store.load_run(run_id)


async def test_hook_configure_startup_shutdown(make_baseshift: Any) -> None:
    calls: list[str] = []

    class Lifecycle:
        @hookimpl
        def configure(self, baseshift: BaseShift) -> None:
            calls.append("configure")

        @hookimpl
        async def startup(self) -> None:
            calls.append("startup")

        @hookimpl
        def shutdown(self) -> Any:
            async def later() -> None:
                calls.append("shutdown")
            return later()

    async with make_baseshift(plugins=(Lifecycle(),)):
        assert calls == ["configure", "startup"]
    assert calls == ["configure", "startup", "shutdown"]


@pytest.mark.parametrize("failing_first", [True, False])
async def test_hook_startup_that_raises_leaves_no_other_startup_unawaited(
        tmp_path: Path, failing_first: bool) -> None:
    """A sync `startup` raising (a store lacking an ability) stops the start; an async
    `startup` of another plugin is then either awaited or never called, never made and
    dropped ("coroutine 'startup' was never awaited")."""
    began: list[str] = []

    class Async:
        @hookimpl
        async def startup(self) -> None:
            began.append("async")

    class Refuses:
        @hookimpl
        def startup(self) -> None:
            raise ConfigError("this store cannot")

    plugins = (Async(), Refuses()) if failing_first else (Refuses(), Async())
    bs = BaseShift(Settings(store="memory", data_dir=tmp_path, load_entrypoints=False),
                   plugins=plugins)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError, match="this store cannot"):
            async with bs:
                pass
        gc.collect()
    assert [str(w.message) for w in seen if "never awaited" in str(w.message)] == []
    assert began == ([] if failing_first else ["async"])


async def test_hook_register_executors(make_baseshift: Any) -> None:
    class Plugin:
        @hookimpl
        def register_executors(self) -> list[type]:
            return [Upper]

    async with make_baseshift(plugins=(Plugin(),)) as bs:
        snap = await run(bs, Plan("p", "1.0.0", jobs=(upper_job(),)))
    assert snap.jobs["u"].output == "HI"


def test_hook_register_executors_duplicate_names_are_an_error(tmp_path: Path) -> None:
    class Shell:
        name: ClassVar[str] = "shell"

    class Plugin:
        @hookimpl
        def register_executors(self) -> list[type]:
            return [Shell]

    with pytest.raises(PluginError, match="'shell' is already provided by plugin"):
        BaseShift(Settings(store="memory", data_dir=tmp_path, load_entrypoints=False),
                  plugins=(Plugin(),))


async def test_hook_register_backends(make_baseshift: Any) -> None:
    class Counting(MemoryStateStore):
        name: ClassVar[str] = "counting"
        applied = 0

        async def apply(self, changes: Any) -> None:
            type(self).applied += 1
            await super().apply(changes)

    class Plugin:
        @hookimpl
        def register_backends(self) -> list[type]:
            return [Counting]

    async with make_baseshift(plugins=(Plugin(),), store="counting") as bs:
        snap = await run(bs, Plan("p", "1.0.0", jobs=(job("a"),)))
    assert snap.run.state is RunState.COMPLETED
    assert Counting.applied >= 2


def test_unknown_store_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Config 'store' has value 'postgress'. Not one of: "
                                          "memory, postgres, sqlite."):
        BaseShift(Settings(store="postgress", data_dir=tmp_path, load_entrypoints=False))


async def test_hook_job_wrapper(make_baseshift: Any) -> None:
    seen: list[str] = []

    class Plugin:
        @hookimpl
        def job_wrapper(self, ctx: JobContext) -> Any:
            @asynccontextmanager
            async def around() -> AsyncIterator[None]:
                seen.append(f"enter {ctx.job}#{ctx.attempt}")
                yield
                seen.append(f"exit {ctx.job}")
            return around()

    async with make_baseshift(plugins=(Plugin(),)) as bs:
        await run(bs, Plan("p", "1.0.0", jobs=(job("a"),)))
    assert seen == ["enter a#1", "exit a"]
    assert [e[0] for e in samples.EVENTS if e[1] == "a"] == ["start", "end"]


async def test_a_job_wrapper_wraps_the_whole_attempt_once(make_baseshift: Any,
                                                         tmp_path: Path) -> None:
    """Once per attempt, whatever its steps (a template's two here), and around the
    rendering of its config too: a secret that is not set fails the attempt inside it, so
    the wrappers (the metrics', the trace's) see that failure as the attempt's; a timeout
    is a failure they see too."""
    seen: list[str] = []

    class Around:
        def __init__(self, ctx: JobContext) -> None:
            self.ctx = ctx

        def __enter__(self) -> None:
            seen.append(f"enter {self.ctx.job}")

        def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
            seen.append(f"exit {self.ctx.job}: {exc}")

    class Plugin:
        @hookimpl
        def job_wrapper(self, ctx: JobContext) -> Any:
            return Around(ctx)

    async with make_baseshift(plugins=(Plugin(),)) as bs:
        snap = await run(bs, tried_plan(bs, tmp_path))
    assert snap.jobs["steps"].output["stdout"] == "two"
    assert sorted(seen) == ["enter slow", "enter steps", "enter unset",
                            "exit slow: timed out after 0.2s", "exit steps: None",
                            f"exit unset: {UNSET}"]
    assert seen.index("exit steps: None") < seen.index("enter unset")


async def test_hook_track_event(make_baseshift: Any) -> None:
    events: list[Any] = []

    class Plugin:
        @hookimpl
        async def track_event(self, event: Any) -> None:
            events.append(event)

    async with make_baseshift(plugins=(Plugin(),)) as bs:
        await run(bs, Plan("p", "1.0.0", jobs=(job("a"),)))
    runs = [e.new for e in events if isinstance(e, RunStateChanged)]
    jobs = [e.new.value for e in events if isinstance(e, JobStateChanged)]
    assert runs == [RunState.RUNNING, RunState.COMPLETED]
    assert jobs == ["READY", "RUNNING", "SUCCEEDED"]


async def test_hook_track_events(make_baseshift: Any) -> None:
    """A batch observer is given every event once, in order, in batches; each batch after
    the per-event observers saw its events."""
    batches: list[tuple[Any, ...]] = []
    singles: list[Any] = []

    class Plugin:
        @hookimpl
        def track_event(self, event: Any) -> None:
            singles.append(event)

        @hookimpl
        async def track_events(self, events: Any) -> None:
            assert all(e in singles for e in events)  # told one by one first
            batches.append(tuple(events))

    async with make_baseshift(plugins=(Plugin(),)) as bs:
        await run(bs, Plan("p", "1.0.0", jobs=(job("a"), job("b", needs=("a",)))))
    seen = [e for batch in batches for e in batch]
    assert seen == singles
    assert len(batches) < len(seen)  # an engine round's events come together
    jobs = [(e.job, e.new.value) for e in seen if isinstance(e, JobStateChanged)]
    assert [s for j, s in jobs if j == "b"] == ["READY", "RUNNING", "SUCCEEDED"]


async def test_an_observer_that_raises_does_not_keep_events_from_the_others(
        make_baseshift: Any) -> None:
    told: list[Any] = []

    class Broken:
        @hookimpl
        def track_event(self) -> None:
            raise RuntimeError("observer bug")

        @hookimpl
        def track_events(self) -> None:
            raise RuntimeError("observer bug")

    class Listening:
        @hookimpl
        def track_event(self, event: Any) -> None:
            told.append(event)

    async with make_baseshift(plugins=(Listening(), Broken())) as bs:
        snap = await run(bs, Plan("p", "1.0.0", jobs=(job("a"),)))
    assert snap.run.state is RunState.COMPLETED
    assert [e.new for e in told if isinstance(e, RunStateChanged)] == [
        RunState.RUNNING, RunState.COMPLETED]


async def test_a_hookwrapper_of_a_hook_called_directly_is_refused(make_baseshift: Any) -> None:
    class Wrapping:
        @hookimpl(hookwrapper=True)
        def track_events(self) -> Any:
            yield

    with pytest.raises(PluginError, match="track_events is not supported"):
        async with make_baseshift(plugins=(Wrapping(),)):
            pass


async def test_hook_track_event_errors_do_not_break_runs(make_baseshift: Any) -> None:
    class Broken:
        @hookimpl
        def track_event(self) -> None:
            raise RuntimeError("observer bug")

    async with make_baseshift(plugins=(Broken(),)) as bs:
        snap = await run(bs, Plan("p", "1.0.0", jobs=(job("a"),)))
    assert snap.run.state is RunState.COMPLETED


async def test_hook_resolve_secret(make_baseshift: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("API_KEY", "from-env")

    class Vault:
        @hookimpl
        async def resolve_secret(self, name: str) -> str | None:
            return "from-vault" if name == "API_KEY" else None

    spec = job("a", "measure", args={"k": Attr(Name("secret"), "API_KEY")})
    async with make_baseshift(plugins=(Vault(),)) as bs:
        snap = await run(bs, Plan("p", "1.0.0", jobs=(spec,)))
    assert snap.jobs["a"].output == {"k": len("from-vault")}  # not from-env's 8


async def test_hook_provide_sealer(make_baseshift: Any) -> None:
    from baseshift.core.sealing import SEALED_PREFIX, Sealer

    class Reverse:
        """A sealer a test can read: the text reversed behind the prefix."""

        async def seal(self, plaintext: str) -> str:
            return SEALED_PREFIX + plaintext[::-1]

        async def unseal(self, sealed: str) -> str:
            return sealed.removeprefix(SEALED_PREFIX)[::-1]

    class Keys:
        @hookimpl
        def provide_sealer(self) -> Sealer:
            return Reverse()

    async with make_baseshift(plugins=(Keys(),)) as bs:
        sealer = bs.hooks.sealer()
        assert await sealer.seal("abc") == "bsenc:cba"
        assert await sealer.unseal("bsenc:cba") == "abc"


async def test_hook_compliance_controls(make_baseshift: Any) -> None:
    from baseshift.core.compliance import Control

    class Audit:
        @hookimpl
        async def compliance_controls(self) -> list[Control]:
            return [Control("acme.check", "the check holds", "implemented", "seen just now",
                            {"SOC 2": ("CC7.2",)})]

    async with make_baseshift(plugins=(Audit(),)) as bs:
        ids = [c.id for c in await bs.hooks.compliance_controls()]
    assert "acme.check" in ids


def test_hook_validate_plan(tmp_path: Path) -> None:
    class NeedsTimeouts:
        @hookimpl
        def validate_plan(self, plan: Plan) -> list[Diagnostic]:
            return [Diagnostic(plan.path, j.span, "house.timeout",
                               f"job '{j.name}' has no timeout", "add `timeout 5m`")
                    for j in plan.jobs if j.timeout is None]

    flow = tmp_path / "f.bsw"
    flow.write_text('workflow f {\n  version "1.0.0"\n'
                    '  job a uses shell { with { command: "true" } }\n}\n')
    bs = BaseShift(Settings(store="memory", data_dir=tmp_path, load_entrypoints=False),
                   plugins=(NeedsTimeouts(),))
    [compiled] = bs.compile_paths([flow])
    assert not compiled.ok and compiled.plan is None
    assert [d.code for d in compiled.diagnostics] == ["house.timeout"]


def test_hook_register_job_templates(tmp_path: Path) -> None:
    class Templates:
        @hookimpl
        def register_job_templates(self) -> list[str]:
            return ['template say {\n  version "2.1.0"\n  uses shell\n'
                    '  with { command: "echo ${input.what}" }\n  input { what: string }\n}\n']

    bs = BaseShift(Settings(store="memory", data_dir=tmp_path, load_entrypoints=False),
                   plugins=(Templates(),))
    assert [t.ref for t in bs.plugin_templates()] == ["say@2.1.0"]
    flow = tmp_path / "f.bsw"
    flow.write_text('workflow f {\n  version "1.0.0"\n'
                    '  job a uses say@^2 { with { what: "hi" } }\n}\n')
    plan = bs.load_workflow(flow)
    assert plan.jobs[0].template is not None and plan.jobs[0].template.ref == "say@2.1.0"


async def test_hook_register_routes(tmp_path: Path) -> None:
    import httpx
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from baseshift.core.access import WORKFLOWS_READ
    from baseshift.web.access import requires
    from baseshift.web.app import create_app
    from baseshift.web.openapi import operation
    from tests.auth_support import NO_FIRST_ADMIN, bearer, token_for

    @operation("count the loaded workflows", tags=["acme"])
    async def count(request: Any) -> JSONResponse:
        bs = request.app.state.baseshift
        return JSONResponse({"workflows": len(bs.catalog.entries())})

    async def undeclared(request: Any) -> Any:
        return JSONResponse({"open": True})

    class Routes:
        @hookimpl
        def register_routes(self) -> list[Any]:
            return [Route("/api/v1/acme/count", requires(WORKFLOWS_READ)(count),
                          name="acme:count"),
                    Route("/api/v1/acme/undeclared", undeclared, name="acme:undeclared")]

    (tmp_path / "wf").mkdir()
    settings = Settings(store="memory", data_dir=tmp_path / "d", load_entrypoints=False,
                        workflows_dir=tmp_path / "wf", extra=NO_FIRST_ADMIN)
    app = create_app(settings, plugins=(Routes(),))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        assert (await client.get("/api/v1/acme/count")).status_code == 401
        viewer = bearer(await token_for(app.state.baseshift, "viewer"))
        admin = bearer(await token_for(app.state.baseshift, "admin"))
        response = await client.get("/api/v1/acme/count", headers=viewer)
        assert response.json() == {"workflows": 0}
        # a route that declares no permission is closed to all but administrators
        assert (await client.get("/api/v1/acme/undeclared", headers=viewer)).status_code == 403
        assert (await client.get("/api/v1/acme/undeclared", headers=admin)).json() == \
            {"open": True}
        client.headers.update(viewer)
        document = (await client.get("/api/v1/openapi.json")).json()
    assert document["paths"]["/api/v1/acme/count"]["get"]["summary"] == \
        "count the loaded workflows"


@asynccontextmanager
async def _served(tmp_path: Path, *plugins: object) -> AsyncIterator[Any]:
    """The HTTP app with `plugins`, started, and a client on it (the example workflows)."""
    import shutil

    import httpx

    from baseshift.web.app import create_app
    from tests.auth_support import NO_FIRST_ADMIN

    flows = tmp_path / "wf"
    shutil.copytree(Path(__file__).resolve().parents[2] / "workflows", flows)
    settings = Settings(store="memory", templates="memory", data_dir=tmp_path / "d",
                        load_entrypoints=False, workflows_dir=flows, extra=NO_FIRST_ADMIN)
    app = create_app(settings, plugins=plugins)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        yield app.state.baseshift, client


async def test_hook_register_middleware(tmp_path: Path) -> None:
    """A plugin's middleware sees every request, refused and unrouted ones included, with
    the matched route's template in the scope after routing; its answers carry the
    security headers."""
    seen: list[tuple[str, object]] = []

    class Tap:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await self.app(scope, receive, send)
                return
            if scope["path"] == "/acme/teapot":
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("short and stout", 418)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            seen.append((scope["path"], getattr(scope.get("route"), "path", None)))

    class Acme:
        @hookimpl
        def register_middleware(self) -> list[Any]:
            from starlette.middleware import Middleware

            return [Middleware(Tap)]

    async with _served(tmp_path, Acme()) as (bs, client):
        started = await client.get("/api/v1/workflows/abc123")  # anonymous: 401
        assert started.status_code == 401
        assert (await client.get("/nowhere")).status_code == 404
        teapot = await client.get("/acme/teapot")
        assert teapot.status_code == 418
        assert "x-content-type-options" in teapot.headers
    assert ("/api/v1/workflows/abc123", "/api/v1/workflows/{run_id}") in seen
    assert ("/nowhere", None) in seen


async def test_hook_authenticate(tmp_path: Path) -> None:
    from baseshift.core.access import Actor, ActorKind, Grant
    from baseshift.core.errors import Unauthorized

    class Header:
        @hookimpl
        def authenticate(self, request: Any) -> Actor | None:
            name = request.headers.get("x-acme-user")
            if name is None:
                return None
            if name == "mallory":
                raise Unauthorized("mallory is banned")
            return Actor(id=name, name=name, kind=ActorKind.USER, grants=(Grant("viewer"),))

    async with _served(tmp_path, Header()) as (bs, client):
        assert (await client.get("/api/v1/workflows")).status_code == 401
        ann = {"x-acme-user": "ann"}
        assert (await client.get("/api/v1/workflows", headers=ann)).status_code == 200
        refused = await client.post("/api/v1/workflows", json={"workflow": "hello"},
                                    headers=ann)
        assert refused.status_code == 403  # a viewer starts nothing
        banned = await client.get("/api/v1/workflows", headers={"x-acme-user": "mallory"})
        assert banned.status_code == 401 and banned.json()["detail"] == "mallory is banned"


async def test_hook_authorize(tmp_path: Path) -> None:
    from baseshift.core.access import Actor, Decision, Resource
    from tests.auth_support import bearer, token_for

    asked: list[tuple[str, str | None]] = []

    class NoHelloStarts:
        @hookimpl
        async def authorize(self, actor: Actor, permission: str,
                            resource: Resource) -> Decision | None:
            asked.append((permission, resource.workflow))
            if permission == "runs:start" and resource.workflow == "hello":
                return Decision.DENY
            return None

    async with _served(tmp_path, NoHelloStarts()) as (bs, client):
        admin = bearer(await token_for(bs, "admin"))
        vetoed = await client.post("/api/v1/workflows", json={"workflow": "hello"},
                                   headers=admin)
        assert vetoed.status_code == 403
        started = await client.post("/api/v1/workflows", json={"workflow": "release_signoff"},
                                    headers=admin)
        assert started.status_code == 201, started.text
    assert ("runs:start", "hello") in asked and ("runs:start", "release_signoff") in asked


async def test_hook_register_permissions(tmp_path: Path) -> None:
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from baseshift.core.access import Permission
    from baseshift.web.access import requires
    from tests.auth_support import bearer, token_for

    @requires("acme:count")
    async def count(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    class Acme:
        @hookimpl
        def register_permissions(self) -> list[Permission]:
            return [Permission("acme:count", "count things")]

        @hookimpl
        def register_routes(self) -> list[Any]:
            return [Route("/api/v1/acme/count", count, name="acme:count")]

    async with _served(tmp_path, Acme()) as (bs, client):
        assert bs.hooks.permissions()["acme:count"].summary == "count things"
        viewer = bearer(await token_for(bs, "viewer"))
        admin = bearer(await token_for(bs, "admin"))
        assert (await client.get("/api/v1/acme/count", headers=viewer)).status_code == 403
        assert (await client.get("/api/v1/acme/count", headers=admin)).json() == {"ok": True}

    class Clash:
        @hookimpl
        def register_permissions(self) -> list[Permission]:
            return [Permission("runs:start", "mine")]

    with pytest.raises(PluginError, match="runs:start"):
        BaseShift(Settings(store="memory", load_entrypoints=False),
                  plugins=(Clash(),)).hooks.permissions()


def test_hook_register_commands() -> None:
    from baseshift.core.command import Command
    from baseshift.core.plugins import make_plugin_manager, plugin_commands

    def hello(args: Any) -> int:
        return 0

    class Commands:
        @hookimpl
        def register_commands(self) -> list[Command]:
            return [Command("hello", "say hello", lambda p: None, hello)]

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(Commands(), name="acme")
    found = plugin_commands(pm)
    assert found["hello"].handler is hello and "serve" in found

    class Again:
        @hookimpl
        def register_commands(self) -> list[Command]:
            return [Command("hello", "another hello", lambda p: None, hello)]

    pm.register(Again(), name="acme2")
    with pytest.raises(PluginError, match="'hello' is already provided by plugin"):
        plugin_commands(pm)


def shell_flow(tmp_path: Path, command: str) -> Path:
    """A workflow file of one shell job (retries and take-ups rebuild plans from source)."""
    flow = tmp_path / "flows" / "f.bsw"
    flow.parent.mkdir(exist_ok=True)
    flow.write_text('workflow f {\n  version "1.0.0"\n  input { keep: boolean = false }\n'
                    f'  job a uses shell {{ with {{ command: "{command}" }} }}\n}}\n')
    return flow


async def test_hook_admit_run(make_baseshift: Any) -> None:
    """The first implementation that answers takes the start over and the later ones are
    not called; when none answers, the engine starts the run."""
    asked: list[str] = []

    class Spy:
        @hookimpl
        def admit_run(self, plan: Plan) -> None:
            asked.append(plan.name)

    class Hold:
        @hookimpl
        async def admit_run(self, baseshift: BaseShift, plan: Plan,
                            inputs: dict[str, Any]) -> str | None:
            if plan.name != "held":
                return None
            return await baseshift.engine.submit(plan, inputs, start=False)

    async with make_baseshift(plugins=(Spy(), Hold())) as bs:
        held = await bs.runs.start_plan(Plan("held", "1.0.0", jobs=(job("a"),)), {})
        snapshot = await bs.store.load_run(held)
        assert snapshot is not None and snapshot.run.state is RunState.INITIALIZED
        assert held not in bs.engine.runs and asked == []
        started = await bs.runs.start_plan(Plan("p", "1.0.0", jobs=(job("a"),)), {})
        assert (await bs.engine.wait(started)).state is RunState.COMPLETED
        assert asked == ["p"]


async def test_hook_reopen_run(make_baseshift: Any, tmp_path: Path) -> None:
    """A plugin may refuse a retry (Conflict) or reopen the run itself with `action`."""
    reopened: list[str] = []

    class Frozen:
        @hookimpl
        def reopen_run(self, run: RunRecord) -> None:
            if not reopened:
                raise Conflict(f"run '{run.id}' is frozen")

    class Counted:
        @hookimpl
        async def reopen_run(self, run: RunRecord, action: Callable[[], Awaitable[None]]
                             ) -> bool:
            await action()
            reopened.append(run.id)
            return True

    async with make_baseshift(plugins=(Counted(), Frozen())) as bs:
        run_id = await bs.runs.start_plan(bs.load_workflow(shell_flow(tmp_path, "false")), {})
        assert (await bs.engine.wait(run_id)).state is RunState.FAILED
        with pytest.raises(Conflict, match="is frozen"):
            await bs.runs.retry(run_id)
        reopened.append("thawed")
        await bs.runs.retry(run_id)
        assert reopened == ["thawed", run_id]
        assert (await bs.engine.wait(run_id)).state is RunState.FAILED
        snapshot = await bs.runs.snapshot(run_id)
        assert len(snapshot.attempts_of("a")) == 2


async def test_hook_take_up_runs(make_baseshift: Any, tmp_path: Path) -> None:
    """Runs left INITIALIZED go to the plugins first; those none takes are started."""
    offered: list[str] = []

    class Keep:
        @hookimpl
        def take_up_runs(self, runs: list[RunRecord]) -> list[str]:
            offered.extend(r.id for r in runs)
            return [r.id for r in runs if r.inputs["keep"]]

    async with make_baseshift(plugins=(Keep(),)) as bs:
        plan = bs.load_workflow(shell_flow(tmp_path, "true"))
        kept = await bs.engine.submit(plan, {"keep": True}, start=False)
        started = await bs.engine.submit(plan, {}, start=False)
        await bs.runs.take_up_waiting()
        assert sorted(offered) == sorted([kept, started])
        assert (await bs.engine.wait(started)).state is RunState.COMPLETED
        snapshot = await bs.store.load_run(kept)
        assert snapshot is not None and snapshot.run.state is RunState.INITIALIZED
        assert kept not in bs.engine.runs


async def test_hook_register_notifiers(make_baseshift: Any) -> None:
    """A plugin's notifier is offered beside the builtin ones, checks the targets naming
    it, and is told when an alert of a rule naming it fires (here: a run failed)."""
    from baseshift.core import Notice
    from baseshift.plugins.alerts.rules import parse_rule
    from baseshift.plugins.alerts.service import alerting_of

    told: list[tuple[Notice, dict[str, Any]]] = []

    class Pager:
        name: ClassVar[str] = "pager"

        def check_target(self, target: dict[str, Any], field: str) -> dict[str, Any]:
            return {"service": str(target.get("service", "ops"))}

        async def send(self, notice: Notice, target: dict[str, Any]) -> None:
            told.append((notice, dict(target)))

    class Plugin:
        @hookimpl
        def register_notifiers(self) -> list[Any]:
            return [Pager()]

    async with make_baseshift(plugins=(Plugin(),)) as bs:
        assert {"pager", "webhook", "email"} <= set(bs.hooks.notifiers())
        alerting = alerting_of(bs)
        rule = parse_rule({"name": "p-fails", "kind": "failure_rate",
                           "params": {"workflow": "p", "threshold": 0.5},
                           "notify": [{"type": "pager", "service": "db"}]},
                          alerting.notifiers, alerting.refuse_kind, 0.0)
        await alerting.create(rule)
        snap = await run(bs, Plan("p", "1.0.0", jobs=(job("a", args={"tag": "a", "fail": True}),)))
        assert snap.run.state is RunState.FAILED
        await alerting.evaluator.tick()
    [(notice, target)] = told
    assert (notice.rule, notice.status, notice.subject, notice.value) == \
        ("p-fails", "firing", "p", 1.0)
    assert target == {"service": "db", "type": "pager"}


async def test_hook_register_notifiers_refuses_a_name_taken(make_baseshift: Any) -> None:
    class Webhook:
        name: ClassVar[str] = "webhook"

    class Plugin:
        @hookimpl
        def register_notifiers(self) -> list[Any]:
            return [Webhook()]

    with pytest.raises(PluginError, match="'webhook' is already provided"):
        async with make_baseshift(plugins=(Plugin(),)):
            pass


async def test_hook_startup_that_raises_shuts_down_the_plugins_started_before(
        tmp_path: Path) -> None:
    """A failed start leaves nothing running: each plugin whose `startup` returned gets its
    `shutdown`; the one that raised, and those after it, do not."""
    events: list[str] = []

    class Plugin:
        def __init__(self, name: str, refuse: bool = False) -> None:
            self.name, self.refuse = name, refuse

        @hookimpl
        async def startup(self) -> None:
            if self.refuse:
                raise ConfigError(f"{self.name} cannot")
            events.append(f"start {self.name}")

        @hookimpl
        async def shutdown(self) -> None:
            events.append(f"stop {self.name}")

    # pluggy calls the plugins registered last first: c, then b (which refuses), never a
    plugins = (Plugin("a"), Plugin("b", refuse=True), Plugin("c"))
    bs = BaseShift(Settings(store="memory", data_dir=tmp_path, load_entrypoints=False),
                   plugins=plugins)
    with pytest.raises(ConfigError, match="b cannot"):
        async with bs:
            pass
    assert events == ["start c", "stop c"]
