"""The official (blocking) Kubernetes client at arm's length from the event loop.

Every call runs on a thread; a pod's watch events are read on a daemon thread of their own
and handed to the loop. Client errors become `ExecutionError`s that say what was being done,
where, and what to check. The `kubernetes` package is imported only when a job uses it.
"""
from __future__ import annotations

import asyncio
import importlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from baseshift.core.errors import ExecutionError

from .watch import GONE

REQUEST_TIMEOUT = (10.0, 60.0)
"""(connect, read) seconds for one API call, so a hung API server cannot hold a thread."""

RBAC_HINT = ("the executor needs pods: create, get, list, watch, delete and pods/log: get in "
             "that namespace (deploy/kubernetes/20-rbac.yaml grants them)")

Event = tuple[str, dict[str, Any]]


def connect(kubeconfig: str | None, context: str | None) -> Any:
    """A CoreV1Api from the kubeconfig file (the option, else $KUBECONFIG, else
    ~/.kube/config), or from the pod's service account when running in a cluster."""
    # typed as Any: the package's own annotations are partial
    client: Any = importlib.import_module("kubernetes.client")
    config: Any = importlib.import_module("kubernetes.config")
    path = kubeconfig or os.environ.get("KUBECONFIG")
    in_cluster = not path and "KUBERNETES_SERVICE_HOST" in os.environ \
        and not Path(config.KUBE_CONFIG_DEFAULT_LOCATION).expanduser().exists()
    try:
        if in_cluster:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return client.CoreV1Api(client.ApiClient(configuration))
        # a list of files in $KUBECONFIG: the client reads the first
        first = path.split(os.pathsep)[0] if path else None
        return client.CoreV1Api(config.new_client_from_config(config_file=first,
                                                              context=context))
    except (config.ConfigException, OSError, ValueError) as exc:
        where = "the pod's service account" if in_cluster else \
            f"kubeconfig {first or config.KUBE_CONFIG_DEFAULT_LOCATION}"
        raise ExecutionError(f"cannot load the Kubernetes configuration from {where}: {exc}",
                             hint="set KUBECONFIG or [plugins.executor_kubernetes] kubeconfig, "
                                  "or run Base Shift in a pod with a service account") from None


def server_of(api: Any) -> str:
    """The API server's URL, for messages."""
    configuration = getattr(getattr(api, "api_client", None), "configuration", None)
    return str(getattr(configuration, "host", None) or "the Kubernetes API server")


def explain(exc: BaseException, doing: str, api: Any) -> ExecutionError:
    """One clear error for a failed client call (`doing`: "creating pod x in namespace y")."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0:
        message = _api_message(exc)
        if status == 401:
            return ExecutionError(f"{server_of(api)} refused the credentials while {doing}: "
                                  f"{message}", hint="check the kubeconfig's user or token")
        if status == 403:
            return ExecutionError(f"not allowed: {doing}: {message}", hint=RBAC_HINT)
        return ExecutionError(f"the Kubernetes API answered {status} while {doing}: {message}")
    if isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3"):
        reason = getattr(exc, "reason", None) or exc
        return ExecutionError(f"{server_of(api)} is unreachable ({doing}): {reason}",
                              hint="check that the cluster is up and the kubeconfig's server "
                                   "address is right")
    return ExecutionError(f"the Kubernetes client failed while {doing}: "
                          f"{type(exc).__name__}: {exc}")


def _api_message(exc: BaseException) -> str:
    """The `message` of the API's Status body, else the HTTP reason."""
    body = getattr(exc, "body", None)
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        message = None
    return str(message or getattr(exc, "reason", None) or exc)


class PodApi:
    """Pod calls of a CoreV1Api-like object, each on a thread, errors explained."""

    def __init__(self, api: Any) -> None:
        self.api = api

    async def create(self, namespace: str, manifest: dict[str, Any]) -> None:
        doing = f"creating pod {manifest['metadata']['name']} in namespace {namespace}"
        await self._call(doing, self.api.create_namespaced_pod, namespace, manifest)

    async def delete(self, namespace: str, name: str) -> bool:
        """Delete the pod; False if it was already gone (the API answered 404)."""
        try:
            await _thread(self.api.delete_namespaced_pod, name, namespace,
                          propagation_policy="Background")
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise self.explain(exc, f"deleting pod {name} in namespace {namespace}") from None
        return True

    async def log(self, namespace: str, name: str, container: str) -> str:
        text = await self._call(f"reading the log of pod {name} in namespace {namespace}",
                                self.api.read_namespaced_pod_log, name, namespace,
                                container=container)
        return text if isinstance(text, str) else bytes(text).decode("utf-8", "replace")

    def events(self, namespace: str, name: str, round_seconds: int) -> PodEvents:
        return PodEvents(self, namespace, name, round_seconds)

    async def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await _thread(fn, *args, **kwargs)
        except Exception as exc:
            raise self.explain(exc, doing) from None

    def explain(self, exc: BaseException, doing: str) -> ExecutionError:
        return explain(exc, doing, self.api)


async def _thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One client call on a thread, bounded by REQUEST_TIMEOUT."""
    return await asyncio.to_thread(fn, *args, _request_timeout=REQUEST_TIMEOUT, **kwargs)


class PodEvents:
    """One pod's watch events, read on a daemon thread and queued for the event loop.

    The watch runs in rounds of `round_seconds` (the server ends each one). A round starts
    with the pod's current state, so a round that shows nothing means the pod is gone: that
    is reported as a `GONE` event. `stop()` ends the thread at its next event at the latest
    (deleting the pod, which always follows, produces one).
    """

    def __init__(self, pods: PodApi, namespace: str, name: str, round_seconds: int) -> None:
        self._pods = pods
        self.namespace = namespace
        self.name = name
        self.round_seconds = round_seconds
        self._queue: asyncio.Queue[Event | ExecutionError] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._watch: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"baseshift-kube-watch-{name}")

    def start(self) -> None:
        self._thread.start()

    async def next(self) -> Event:
        item = await self._queue.get()
        if isinstance(item, ExecutionError):
            raise item
        return item

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            watch = self._watch
        if watch is not None:
            watch.stop()  # closes the connection, which ends a blocked read

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                if not self._round():
                    self._deliver((GONE, {}))
                    return
        except Exception as exc:
            if not self._stopped.is_set():
                self._deliver(self._pods.explain(exc, f"watching pod {self.name} in "
                                                      f"namespace {self.namespace}"))

    def _round(self) -> bool:
        """One watch request; False if it ended without showing the pod."""
        watch: Any = importlib.import_module("kubernetes.watch")
        with self._lock:
            if self._stopped.is_set():
                return True
            self._watch = watch.Watch()
        stream = self._watch.stream(
            self._pods.api.list_namespaced_pod, self.namespace,
            field_selector=f"metadata.name={self.name}", timeout_seconds=self.round_seconds,
            _request_timeout=(REQUEST_TIMEOUT[0], self.round_seconds + REQUEST_TIMEOUT[1]),
            deserialize=False)
        seen = False
        for event in stream:
            if self._stopped.is_set():
                break
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                seen = True
                self._deliver((str(event["type"]), dict(event["object"])))
        return seen or self._stopped.is_set()

    def _deliver(self, item: Event | ExecutionError) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            self._stopped.set()
