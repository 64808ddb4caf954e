"""The `kubernetes` step type: run a job as a Pod and return what it printed last.

```
job train uses kubernetes {
  timeout 30m
  with {
    image: "python:3.12-slim"                          # required
    command: ["python", "-c"]                          # replaces the image's entrypoint
    args: ["print('{\\"accuracy\\": 0.93}')"]
    env: { EPOCHS: 3, DATASET: "s3://bucket/${input.day}" }
    resources: { requests: { cpu: "250m", memory: "64Mi" },
                 limits: { cpu: "500m", memory: "128Mi" } }
    labels: { team: "ml" }
    namespace: "ml-jobs"                               # default: the configured namespace
  }
}
```

One attempt is one Pod (restartPolicy Never) with one container named `job`, created in
the namespace, watched until it ends, and always deleted afterwards: after success, after
failure, and when the attempt is cancelled or times out. The pod's log is the attempt's log;
the output is the whole log if it is JSON, else its last line if that is a JSON object or
array, else `{"log": text}`. Image pull errors, a missing secret or config map, an OOM kill,
a non-zero exit code, an eviction or a deletion by someone else fail the attempt with that
reason. Settings (`[plugins.executor_kubernetes]`) are in `options.py`; the pod
manifest is built by `pods.py`, the watch verdicts come from `watch.py`, and
`client.py` keeps the blocking client off the event loop.
"""
from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any, ClassVar

from baseshift.core.errors import ExecutionError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.json_text import NOT_JSON, output_json
from baseshift.core.protocols import Executor, JobContext, JobResult

from ..extras import KUBERNETES, missing_driver
from .client import PodApi, connect
from .options import KubeOptions
from .pods import CONTAINER, WITH_SCHEMA, parse_request, pod_manifest, pod_name
from .watch import PodTracker, Verdict

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.diagnostics import Diagnostic
    from baseshift.core.plan import Plan

LOG_LIMIT = 1024 * 1024
"""Characters of a pod's log kept: the end, where the output line is."""

TAIL_LINES = 10


class KubernetesExecutor:
    """Runs each attempt as a Pod; `options` come from the application's settings."""

    name: ClassVar[str] = "kubernetes"
    config_schema: ClassVar[dict[str, Any]] = WITH_SCHEMA
    options: ClassVar[KubeOptions] = KubeOptions()

    def __init__(self) -> None:
        self._pods: PodApi | None = None
        self._connecting = asyncio.Lock()
        self._own_client = False
        self._removals: set[asyncio.Task[None]] = set()

    @classmethod
    def configured(cls, options: KubeOptions) -> type[KubernetesExecutor]:
        """This class bound to one application's options (executors are built with no
        arguments, and two applications in one process may have different settings)."""
        return type(cls.__name__, (cls,), {"options": options, "__module__": cls.__module__})

    async def execute(self, ctx: JobContext) -> JobResult:
        request = parse_request(ctx.config)
        pods = await self._api()
        name = pod_name(ctx.job, ctx.attempt, secrets.token_hex(3))
        manifest = pod_manifest(ctx, request, self.options.defaults, name=name)
        namespace = manifest["metadata"]["namespace"]
        creating = asyncio.ensure_future(pods.create(namespace, manifest))
        try:
            await asyncio.shield(creating)
            ctx.log(f"pod {name} created in namespace {namespace} (image {request.image})")
            verdict = await self._follow(pods, namespace, name, ctx)
            text = await self._read_log(pods, namespace, name, verdict)
            for line in text.splitlines():
                ctx.log(line)
        finally:
            await self._remove(pods, creating, namespace, name, ctx)
        if not verdict.succeeded:
            raise ExecutionError(_failure(verdict, text))
        return JobResult(output=_output(text), log="\n".join(ctx.lines))

    async def aclose(self) -> None:
        """Close the client this executor built (never one passed in the options), once the
        pods of cancelled attempts are deleted."""
        if self._removals:
            await asyncio.wait(set(self._removals))
        pods, self._pods = self._pods, None
        if pods is not None and self._own_client:
            await asyncio.to_thread(pods.api.api_client.close)

    async def _api(self) -> PodApi:
        async with self._connecting:
            if self._pods is None:
                api = self.options.api
                if api is None:
                    api = await asyncio.to_thread(connect, self.options.kubeconfig,
                                                  self.options.context)
                    self._own_client = True
                self._pods = PodApi(api)
            return self._pods

    async def _follow(self, pods: PodApi, namespace: str, name: str,
                      ctx: JobContext) -> Verdict:
        tracker = PodTracker(name, ctx.log)
        events = pods.events(namespace, name, self.options.watch_seconds)
        events.start()
        try:
            while True:
                kind, pod = await events.next()
                verdict = tracker.observe(kind, pod)
                if verdict is not None:
                    return verdict
        finally:
            events.stop()

    async def _read_log(self, pods: PodApi, namespace: str, name: str,
                        verdict: Verdict) -> str:
        """The container's log (its end, at most LOG_LIMIT characters). A failed pod's log
        is only a help for the message: not having it must not hide the real reason."""
        if not verdict.ran:
            return ""
        try:
            text = await pods.log(namespace, name, CONTAINER)
        except ExecutionError:
            if verdict.succeeded:
                raise
            return ""
        if len(text) > LOG_LIMIT:
            dropped = len(text) - LOG_LIMIT
            text = f"[baseshift: {dropped} characters of the pod's log dropped]\n" \
                   + text[-LOG_LIMIT:]
        return text

    async def _remove(self, pods: PodApi, creating: asyncio.Future[None], namespace: str,
                      name: str, ctx: JobContext) -> None:
        """Delete the pod in a task of its own, shielded: an attempt cancelled again while
        it waits for the create call or the delete ends at once, and the pod is still
        deleted (`aclose` waits for that)."""
        removal = asyncio.create_task(_remove(pods, creating, namespace, name, ctx),
                                      name=f"baseshift-kube-remove-{name}")
        self._removals.add(removal)
        removal.add_done_callback(self._removals.discard)
        await asyncio.shield(removal)


async def _remove(pods: PodApi, creating: asyncio.Future[None], namespace: str, name: str,
                  ctx: JobContext) -> None:
    """Delete the pod once its create call has ended (a cancel during the call must not
    leave a pod behind)."""
    try:
        await creating
    except Exception:
        return  # never created; the create error is what propagates
    try:
        if await pods.delete(namespace, name):
            ctx.log(f"pod {name} deleted")
    except ExecutionError as exc:
        ctx.log(f"pod {name} could not be deleted: {exc.message}")


def _failure(verdict: Verdict, text: str) -> str:
    if not verdict.with_log:
        return verdict.message
    lines = [line for line in text.splitlines() if line.strip()][-TAIL_LINES:]
    return f"{verdict.message}: " + "\n".join(lines) if lines else verdict.message


def _output(text: str) -> Any:
    value = output_json(text)
    return {"log": text} if value is NOT_JSON else value


@hookimpl
def register_executors(baseshift: App) -> list[type[Executor]]:
    return [KubernetesExecutor.configured(KubeOptions.from_settings(baseshift.settings))]


@hookimpl
def validate_plan(plan: Plan) -> list[Diagnostic]:
    """`uses kubernetes` needs `baseshift[kubernetes]`: say so at check time."""
    return missing_driver(plan, KubernetesExecutor.name, KUBERNETES)
