"""The `kubernetes` executor up to the client boundary, and on a real cluster when there is one.

No cluster runs on this machine, so a fake CoreV1Api (tests/plugins/kubernetes/kube_fakes.py)
stands in for the API server; the real `kubernetes.watch.Watch` reads its streams. Covered:
- the pod manifests produced for the workflows in tests/plugins/kubernetes/pods/*.bsw,
  compared with the golden `*.pods.yaml` beside them (also checked against the client's
  V1Pod model). Regenerate them with `BASESHIFT_UPDATE_GOLDEN=1 pytest
  tests/plugins/test_executor_kubernetes.py` and review the diff;
- the verdicts for the recorded watch sequences in tests/plugins/kubernetes/watch/*.json;
- cancel, timeout and failures deleting the pod; errors of the client turned into messages.
The end-to-end test runs a real pod when KUBECONFIG names a reachable cluster.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException
from ruamel.yaml import YAML

from baseshift.core.compiled import CheckEnv
from baseshift.core.errors import ConfigError, ExecutionError, ExpressionError
from baseshift.core.expr import ObjectExpr, evaluate
from baseshift.core.plugins import DEFAULT_PLUGINS
from baseshift.core.protocols import Executor, JobContext, JobResult
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from baseshift.core.tracecontext import traceparent_bound
from baseshift.dsl import compile_source
from baseshift.plugins.kubernetes import executor as executor_kubernetes
from baseshift.plugins.kubernetes.executor import KubernetesExecutor
from baseshift.plugins.kubernetes.options import KubeOptions
from baseshift.plugins.kubernetes.pods import WITH_SCHEMA, PodDefaults, parse_request, pod_manifest
from baseshift.plugins.kubernetes.watch import PodPhase, PodTracker
from tests.conftest import free_port

HERE = Path(__file__).parent / "kubernetes"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from kube_fakes import FakeCoreV1Api, recording  # noqa: E402

UPDATE = os.environ.get("BASESHIFT_UPDATE_GOLDEN") == "1"
LIMIT = 20  # seconds; only to keep a broken test from hanging the suite
RUN_ID = "18f2c3a4b5d-1a2b3c4d"
NAME = re.compile(r"^bs-[a-z0-9-]+-\d+-([0-9a-f]{6})$")
PLUGINS = () if "executor_kubernetes" in DEFAULT_PLUGINS else (executor_kubernetes,)


def executor(api: Any, **options: Any) -> KubernetesExecutor:
    settings = Settings(extra={"executor_kubernetes": {"api": api, **options}})
    cls = KubernetesExecutor.configured(KubeOptions.from_settings(settings))
    return cls()


def ctx(job: str = "train", timeout: float | None = None, **config: Any) -> JobContext:
    config.setdefault("image", "example/trainer:1.4")
    return JobContext(run_id=RUN_ID, job=job, attempt=1, config=config, timeout=timeout)


async def run(api: Any, context: JobContext | None = None, **options: Any) -> JobResult:
    return await asyncio.wait_for(executor(api, **options).execute(context or ctx()), LIMIT)


async def fails(api: Any, context: JobContext | None = None, **options: Any) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        await run(api, context, **options)
    return info.value


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop and the client threads work until `condition` holds."""
    async with asyncio.timeout(LIMIT):
        while not condition():
            await asyncio.sleep(0.01)


# ------------------------------------------------------------------ contract and settings


def test_the_hook_registers_an_executor_bound_to_the_settings() -> None:
    app = type("App", (), {"settings": Settings(extra={"executor_kubernetes": {
        "namespace": "jobs", "labels": {"team": "ml"}}})})()
    [cls] = executor_kubernetes.register_executors(app)
    assert cls.name == "kubernetes" and issubclass(cls, KubernetesExecutor)
    assert cls.options.defaults == PodDefaults(namespace="jobs", labels=(("team", "ml"),))
    assert isinstance(cls(), Executor)
    assert KubernetesExecutor.options.defaults.namespace == "default"  # the base is untouched


@pytest.mark.parametrize(("table", "message"), [
    ({"namspace": "x"}, "unknown key 'namspace' (hint: did you mean 'namespace'?)"),
    ({"namespace": "Team_A"}, "'namespace' must be a DNS label"),
    ({"labels": {"baseshift.io/run-id": "x"}}, "the label prefix 'baseshift.io/' is reserved"),
    ({"labels": {"team": "a b"}}, "label 'team' has value 'a b'"),
    ({"watch_seconds": 0}, "'watch_seconds' must be a positive integer"),
    ({"kubeconfig": ""}, "'kubeconfig' must be a non-empty string"),
    ({"api": "https://10.0.0.1:6443"}, "'api' must be a CoreV1Api-like client object, "
                                       "got 'https://10.0.0.1:6443'"),
])
def test_bad_settings_stop_the_start_with_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        KubeOptions.from_settings(Settings(extra={"executor_kubernetes": table}))
    assert str(info.value).startswith("[plugins.executor_kubernetes] ")
    assert message in str(info.value)


async def test_a_bad_setting_is_one_clear_error_when_the_app_is_built(
        make_baseshift: Any) -> None:
    with pytest.raises(ConfigError, match="'namespace' must be a DNS label"):
        async with make_baseshift(plugins=PLUGINS,
                                  extra={"executor_kubernetes": {"namespace": "-x"}}):
            pass


# ------------------------------------------------------------------ manifests (golden)


CASES = sorted(p.stem for p in (HERE / "pods").glob("*.bsw"))


@pytest.mark.parametrize("case", CASES)
async def test_pod_manifests_match_the_golden_files(case: str, make_baseshift: Any) -> None:
    from baseshift.dsl import compile_source

    options_file = HERE / "pods" / f"{case}.options.json"
    options = json.loads(options_file.read_text()) if options_file.exists() else {}
    api = FakeCoreV1Api.replaying("succeeded")
    async with make_baseshift(plugins=PLUGINS,
                              extra={"executor_kubernetes": {"api": api, **options}}) as bs:
        source = (HERE / "pods" / f"{case}.bsw").read_text()
        compiled = compile_source(source, f"{case}.bsw", bs.check_env())
        assert compiled.ok and compiled.plan is not None, compiled.diagnostics
        await bs.engine.submit(compiled.plan, {}, run_id=RUN_ID)
        record = await asyncio.wait_for(bs.engine.wait(RUN_ID), LIMIT)
    assert record.state is RunState.COMPLETED
    pods = sorted(api.created, key=lambda pod: pod["metadata"]["annotations"]["baseshift.io/job"])
    assert sorted(api.deleted) == sorted((p["metadata"]["namespace"], p["metadata"]["name"])
                                         for p in pods)
    for pod in pods:
        V1Pod.model_validate(pod)  # the client's model of the API: no unknown or wrong field
    _check_golden(HERE / "pods" / f"{case}.pods.yaml", _yaml([_stable(p) for p in pods]))


def _stable(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod with its random name suffix replaced (checked, then made stable)."""
    match = NAME.match(pod["metadata"]["name"])
    assert match, pod["metadata"]["name"]
    pod["metadata"]["name"] = pod["metadata"]["name"][: match.start(1)] + "xxxxxx"
    return pod


def _yaml(documents: list[dict[str, Any]]) -> str:
    import io

    out = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.explicit_start = True
    yaml.dump_all(documents, out)
    return out.getvalue()


def _check_golden(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with BASESHIFT_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


async def test_every_attempt_gets_its_own_pod_name() -> None:
    api = FakeCoreV1Api.replaying("succeeded")
    await run(api)
    await run(api)
    first, second = (p["metadata"]["name"] for p in api.created)
    assert first != second and NAME.match(first) and NAME.match(second)


@pytest.mark.parametrize(("config", "message"), [
    ({"image": ""}, "'image' must be a non-empty string"),
    ({"imgae": "x"}, "unknown key 'imgae' in the with-block"),
    ({"resources": {"limits": {"memory": "lots"}}},
     "'resources.limits.memory' has value 'lots', which is not a Kubernetes quantity"),
    ({"resources": {"limit": {}}}, "'resources' must be an object with 'requests'"),
    ({"labels": {"team": "ml", "baseshift.io/job": "x"}}, "prefix 'baseshift.io/' is reserved"),
    ({"env": {"A=B": "x"}}, "'env': 'A=B' is not a valid variable name"),
    ({"env": {"A": [1]}}, "'env': A must be a string, number or boolean"),
    ({"command": "python"}, "'command' must be a list of strings"),
    ({"namespace": "Prod"}, "'namespace' must be a DNS label"),
    ({"namespace": "prod\n"}, "'namespace' must be a DNS label"),  # `$` matches before \n
    ({"resources": {"limits": {"memory": "1Gi\n"}}}, "is not a Kubernetes quantity"),
])
async def test_a_bad_with_block_fails_before_any_pod_exists(config: dict[str, Any],
                                                             message: str) -> None:
    api = FakeCoreV1Api.replaying("succeeded")
    context = JobContext(run_id=RUN_ID, job="j", attempt=1,
                         config={"image": "busybox", **config})
    error = await fails(api, context)
    assert message in error.message
    assert api.created == []


# ------------------------------------------------------------------ recorded watch sequences


FAILURES = {
    "exit_code": "the container exited with 3: loading 1200 rows\n"
                 "error: table 'orders' does not exist",
    "image_pull": "image 'example/nope:1.0' could not be pulled: rpc error: code = NotFound "
                  'desc = failed to pull and unpack image "example/nope:1.0": not found',
    "image_backoff": "image 'example/private:2' could not be pulled: "
                     'Back-off pulling image "example/private:2"',
    "invalid_image": "image 'Example/UPPER' could not be pulled: Failed to apply default "
                     'image tag "Example/UPPER": couldn\'t parse image name "Example/UPPER": '
                     "invalid reference format: repository name must be lowercase",
    "config_error": 'the container could not be created: secret "db-credentials" not found',
    "oom_killed": "the container was killed: out of memory (limit 128Mi)",
    "deleted": "was deleted before it finished (kubectl delete, a node drain or an eviction)",
    "gone": "no longer exists: it was deleted before it finished",
    "deadline": "the pod failed: DeadlineExceeded: Pod was active on the node longer than the "
                "specified deadline",
    "evicted": "the pod failed: Evicted: The node was low on resource: ephemeral-storage. "
               "Threshold quantity: 1Gi, available: 512Mi.",
}


@pytest.mark.parametrize("name", sorted(FAILURES))
async def test_a_recorded_failure_fails_the_attempt_with_its_reason(name: str) -> None:
    api = FakeCoreV1Api.replaying(name)
    error = await fails(api)
    assert FAILURES[name] in error.message
    [pod] = api.created
    assert api.deleted == [("default", pod["metadata"]["name"])]  # deleted also on failure


async def test_a_succeeded_pod_gives_its_last_log_line_as_output_and_its_log() -> None:
    api = FakeCoreV1Api.replaying("succeeded")
    result = await run(api)
    assert result.output == {"accuracy": 0.93, "epochs": 3}
    [pod] = api.created
    name = pod["metadata"]["name"]
    assert api.log_reads == [("default", name, "job")]
    assert api.deleted == [("default", name)]
    assert result.log.splitlines() == [
        f"pod {name} created in namespace default (image example/trainer:1.4)",
        f"pod {name}: Pending",
        f"pod {name}: Running on node worker-2",
        f"pod {name}: Succeeded",
        "loading 1200 rows",
        "training 3 epochs",
        '{"accuracy": 0.93, "epochs": 3}',
        f"pod {name} deleted",
    ]


async def test_pending_then_running_then_succeeded_across_watch_rounds() -> None:
    """Three watch rounds (the server ends each): the pod waits for a node, is scheduled, runs
    and succeeds; each new round repeats the current state, which changes nothing."""
    api = FakeCoreV1Api.replaying("pending_then_running")
    result = await run(api, watch_seconds=5)
    assert result.output == [1, 2, 3]
    name = api.created[0]["metadata"]["name"]
    assert [w["timeout_seconds"] for w in api.watches] == [5, 5, 5]
    lines = result.log.splitlines()
    assert lines[1:5] == [
        f"pod {name}: Pending",
        f"pod {name}: not scheduled yet: 0/3 nodes are available: 3 Insufficient memory. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
        f"pod {name}: Running on node worker-2",
        f"pod {name}: Succeeded",
    ]


def test_the_recordings_are_pods_in_the_api_format() -> None:
    names = sorted(p.stem for p in (HERE / "watch").glob("*.json"))
    assert set(FAILURES) | {"succeeded", "pending_then_running", "running_forever"} == set(names)
    for name in names:
        for round_ in recording(name)["rounds"]:
            for event in round_:
                assert event["type"] in ("ADDED", "MODIFIED", "DELETED")
                V1Pod.model_validate(event["object"])


@pytest.mark.parametrize(("log", "output"), [
    ('{"rows": 3}', {"rows": 3}),
    ("42\n", 42),
    ("progress 10%\nprogress 100%\n[1, 2]\n", [1, 2]),
    ("progress 10%\ndone 42\n", {"log": "progress 10%\ndone 42\n"}),
    ("progress\n7\n", {"log": "progress\n7\n"}),
    ("", {"log": ""}),
])
async def test_output_is_read_from_the_log_like_a_shell_steps_stdout(log: str,
                                                                     output: Any) -> None:
    data = recording("succeeded")
    api = FakeCoreV1Api(data["rounds"], log)
    assert (await run(api)).output == output


async def test_a_huge_log_keeps_its_end_where_the_output_is() -> None:
    data = recording("succeeded")
    api = FakeCoreV1Api(data["rounds"], "x" * 2_000_000 + '\n{"ok": true}\n')
    result = await run(api)
    assert result.output == {"ok": True}
    assert "characters of the pod's log dropped" in result.log
    assert len(result.log) < 1_100_000


async def test_a_log_that_cannot_be_read_fails_a_succeeded_pod_but_not_hides_a_failure() -> None:
    gone = ApiException(status=404, reason="Not Found",
                        body=json.dumps({"message": 'pods "x" not found'}))
    api = FakeCoreV1Api.replaying("succeeded", log_error=gone)
    error = await fails(api)
    assert "the Kubernetes API answered 404 while reading the log of pod" in error.message
    api = FakeCoreV1Api.replaying("exit_code", log_error=gone)
    error = await fails(api)
    assert error.message == "the container exited with 3"
    assert len(api.deleted) == 1


def test_a_stale_event_after_a_reconnect_is_ignored() -> None:
    lines: list[str] = []
    tracker = PodTracker("p", lines.append)
    running = {"status": {"phase": "Running"}}
    assert tracker.observe("MODIFIED", running) is None
    assert tracker.observe("ADDED", {"status": {"phase": "Pending"}}) is None
    assert tracker.phase is PodPhase.RUNNING
    assert lines == ["pod p: Running", "pod p: ignoring a stale event (Pending after Running)"]


# ------------------------------------------------------------------ cancel and timeout


async def test_cancel_deletes_the_running_pod() -> None:
    api = FakeCoreV1Api.replaying("running_forever")
    task = asyncio.create_task(executor(api).execute(ctx()))
    await until(lambda: bool(api.watches))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    [pod] = api.created
    assert api.deleted == [("default", pod["metadata"]["name"])]


async def test_a_cancel_during_the_create_call_still_deletes_the_pod() -> None:
    import threading

    gate = threading.Event()
    api = FakeCoreV1Api.replaying("running_forever", create_gate=gate)
    task = asyncio.create_task(executor(api).execute(ctx()))
    await until(api.create_started.is_set)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # it waits for the create call, which the cluster may complete
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    [pod] = api.created
    assert api.deleted == [("default", pod["metadata"]["name"])]


async def test_a_second_cancel_during_the_create_call_still_deletes_the_pod() -> None:
    """A timeout then a user's cancel: the attempt ends at the second cancel, and the pod the
    create call makes afterwards is still deleted (closing the executor waits for that)."""
    import threading

    gate = threading.Event()
    api = FakeCoreV1Api.replaying("running_forever", create_gate=gate)
    kube = executor(api)
    task = asyncio.create_task(kube.execute(ctx()))
    await until(api.create_started.is_set)
    task.cancel()
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()  # waiting for the create call, to delete what it makes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, LIMIT)
    gate.set()
    await asyncio.wait_for(kube.aclose(), LIMIT)
    [pod] = api.created
    assert api.deleted == [("default", pod["metadata"]["name"])]


async def test_a_job_timeout_fails_the_job_and_deletes_its_pod(make_baseshift: Any) -> None:
    from baseshift.dsl import compile_source

    api = FakeCoreV1Api.replaying("running_forever")
    source = ('workflow w {\n  version "1.0.0"\n  job slow uses kubernetes {\n'
              '    timeout 300ms\n    with { image: "busybox" }\n  }\n}\n')
    async with make_baseshift(plugins=PLUGINS, extra={"executor_kubernetes": {"api": api}}) as bs:
        plan = compile_source(source, "w.bsw", bs.check_env()).plan
        assert plan is not None
        run_id = await bs.engine.submit(plan, {})
        record = await asyncio.wait_for(bs.engine.wait(run_id), LIMIT)
        snapshot = await bs.store.load_run(run_id)
    assert record.state is RunState.FAILED and snapshot is not None
    job = snapshot.jobs["slow"]
    assert job.state is JobState.FAILED and job.error == "timed out after 0.3s"
    [pod] = api.created
    assert pod["spec"]["activeDeadlineSeconds"] == 1
    assert api.deleted == [("default", pod["metadata"]["name"])]


async def test_the_blocking_client_does_not_block_the_event_loop() -> None:
    import threading

    gate = threading.Event()
    api = FakeCoreV1Api.replaying("succeeded", create_gate=gate)
    task = asyncio.create_task(executor(api).execute(ctx()))
    await until(api.create_started.is_set)
    # the create call is blocked in the middle, and this coroutine still runs
    assert not gate.is_set() and not task.done()
    gate.set()
    assert (await asyncio.wait_for(task, LIMIT)).output == {"accuracy": 0.93, "epochs": 3}
    assert api.threads and threading.get_ident() not in api.threads


# ------------------------------------------------------------------ client errors


async def test_a_forbidden_create_names_the_permissions_needed() -> None:
    body = json.dumps({"kind": "Status", "message": 'pods is forbidden: User "system:'
                       'serviceaccount:baseshift:default" cannot create resource "pods"'})
    api = FakeCoreV1Api.replaying("succeeded",
                                  create_error=ApiException(status=403, reason="Forbidden",
                                                            body=body))
    error = await fails(api)
    assert error.message.startswith("not allowed: creating pod bs-train-1-")
    assert 'cannot create resource "pods"' in error.message
    assert error.hint is not None and "pods/log: get" in error.hint
    assert api.deleted == []


async def test_a_refused_pod_says_what_the_api_server_said() -> None:
    body = json.dumps({"kind": "Status", "message": 'Pod "bs-x" is invalid: spec.containers'
                       '[0].resources.requests: Invalid value: "2": must be less than or '
                       "equal to cpu limit of 1"})
    api = FakeCoreV1Api.replaying("succeeded", create_error=ApiException(
        status=422, reason="Unprocessable Entity", body=body))
    error = await fails(api)
    assert "the Kubernetes API answered 422 while creating pod" in error.message
    assert "must be less than or equal to cpu limit of 1" in error.message


async def test_a_watch_that_is_refused_fails_the_attempt_and_deletes_the_pod() -> None:
    body = json.dumps({"message": 'pods is forbidden: cannot watch resource "pods"'})
    api = FakeCoreV1Api.replaying("succeeded", watch_error=ApiException(
        status=403, reason="Forbidden", body=body))
    error = await fails(api)
    assert error.message.startswith("not allowed: watching pod bs-train-1-")
    assert 'cannot watch resource "pods"' in error.message
    [pod] = api.created
    assert api.deleted == [("default", pod["metadata"]["name"])]


async def test_a_pod_already_gone_at_delete_time_is_not_an_error() -> None:
    """Someone deleted the pod after it succeeded: the 404 of our delete is no failure."""
    gone = ApiException(status=404, reason="Not Found",
                        body=json.dumps({"message": 'pods "x" not found'}))
    api = FakeCoreV1Api.replaying("succeeded", delete_error=gone)
    result = await run(api)
    assert result.output == {"accuracy": 0.93, "epochs": 3}
    name = api.created[0]["metadata"]["name"]
    assert result.log.splitlines()[-1] == '{"accuracy": 0.93, "epochs": 3}'
    assert not any(line.startswith(f"pod {name} ") and "delete" in line
                   for line in result.log.splitlines())


async def test_a_failed_delete_is_logged_with_the_api_answer() -> None:
    refused = ApiException(status=500, reason="Internal Server Error",
                           body=json.dumps({"message": "etcdserver: request timed out"}))
    api = FakeCoreV1Api.replaying("succeeded", delete_error=refused)
    result = await run(api)
    assert result.output == {"accuracy": 0.93, "epochs": 3}
    name = api.created[0]["metadata"]["name"]
    assert result.log.splitlines()[-1] == (
        f"pod {name} could not be deleted: the Kubernetes API answered 500 while deleting pod "
        f"{name} in namespace default: etcdserver: request timed out")


async def test_an_unreachable_cluster_is_one_clear_error(tmp_path: Path) -> None:
    """The real client, configured from a kubeconfig file, against a port nobody listens on."""
    port = free_port()  # reserved, and nothing listens on it
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "none",
        "clusters": [{"name": "none", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "users": [{"name": "none", "user": {}}]}))
    kube = executor(None, kubeconfig=str(kubeconfig))
    try:
        with pytest.raises(ExecutionError) as info:
            await asyncio.wait_for(kube.execute(ctx()), LIMIT)
    finally:
        await kube.aclose()
    assert info.value.message.startswith(
        f"http://127.0.0.1:{port} is unreachable (creating pod bs-train-1-")
    assert "Connection refused" in info.value.message


async def test_a_missing_kubeconfig_is_one_clear_error(tmp_path: Path) -> None:
    error = await fails(None, kubeconfig=str(tmp_path / "nope"))
    assert error.message.startswith(
        f"cannot load the Kubernetes configuration from kubeconfig {tmp_path / 'nope'}")
    assert error.hint is not None and "KUBECONFIG" in error.hint


# ------------------------------------------------------------------ a real cluster


def _reachable_cluster() -> str | None:
    """None if KUBECONFIG names a cluster that answers, else why the test cannot run."""
    if not os.environ.get("KUBECONFIG"):
        return "KUBECONFIG is not set: no Kubernetes cluster to run a real pod on"
    try:
        from baseshift.plugins.kubernetes.client import connect

        connect(None, None).list_namespaced_pod("default", limit=1, _request_timeout=5)
    except Exception as exc:
        return f"the cluster in KUBECONFIG does not answer: {exc}"
    return None


async def test_a_real_pod_runs_on_the_cluster_in_kubeconfig() -> None:
    reason = _reachable_cluster()
    if reason is not None:
        pytest.skip(reason)
    kube = executor(None, namespace=os.environ.get("BASESHIFT_TEST_NAMESPACE", "default"))
    try:
        context = ctx(job="e2e", timeout=300, image="busybox:1.36",
                      command=["sh", "-c", 'echo hello; echo "{\\"answer\\": $ANSWER}"'],
                      env={"ANSWER": 42},
                      resources={"limits": {"memory": "32Mi", "cpu": "100m"}})
        result = await asyncio.wait_for(kube.execute(context), 300)
        assert result.output == {"answer": 42}
        assert "hello" in result.log.splitlines()
        failing = ctx(job="e2e-fail", timeout=300, image="busybox:1.36",
                      command=["sh", "-c", "echo broken >&2; exit 3"])
        with pytest.raises(ExecutionError, match="the container exited with 3: broken"):
            await asyncio.wait_for(kube.execute(failing), 300)
    finally:
        await kube.aclose()


# ------------------------------------------------------- values reach the pod as one word


def _pod_configs() -> list[ObjectExpr]:
    """`with` blocks compiled against the executor's schema (so scripts are marked)."""
    jobs = [
        # a script after sh -c in `command`, plain argv items in `args`
        'command: ["sh", "-c", "printf \'%s\' ${input.v}"], args: ["${input.v}", "x${input.v}"]',
        # the shell and its -c in `command`, the script in `args`
        'command: ["/bin/bash", "-ec"], args: ["printf \'%s\' \\"${input.v}\\"", "${input.v}"]',
    ]
    body = "\n".join(f'  job k{i} uses kubernetes {{ with {{ image: "alpine", {w} }} }}'
                     for i, w in enumerate(jobs))
    source = f'workflow k {{\n  version "1.0.0"\n  input {{ v: string }}\n{body}\n}}\n'
    compiled = compile_source(source, "k.bsw", CheckEnv({"kubernetes": WITH_SCHEMA}))
    assert compiled.ok and compiled.plan is not None, compiled.diagnostics
    return [job.config for job in compiled.plan.jobs]


POD_CONFIGS = _pod_configs()
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def _container_of(config: ObjectExpr, value: str) -> dict[str, Any]:
    values = evaluate(config, {"input": {"v": value}})
    pod = pod_manifest(ctx(**values), parse_request(values), PodDefaults(), name="bs-k-1-abcdef")
    V1Pod.model_validate(pod)
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


def _sh(script: str) -> bytes:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True,
                          timeout=LIMIT).stdout


@given(TEXT)
def test_any_text_is_one_argv_item_or_one_quoted_word_of_the_pod_script(value: str) -> None:
    first = _container_of(POD_CONFIGS[0], value)
    assert first["command"][:2] == ["sh", "-c"]
    assert _sh(first["command"][2]) == value.encode()
    assert first["args"] == [value, f"x{value}"]  # argv items are never quoted: no shell
    second = _container_of(POD_CONFIGS[1], value)
    assert _sh(second["args"][0]) == value.encode()
    assert second["args"][1] == value


@pytest.mark.parametrize("value", ["O'Brien", "x'; id > stolen.txt; echo '",
                                   "$(touch pwned)", "`touch pwned`", "; touch pwned"])
async def test_an_injection_reaches_the_pod_as_text(value: str) -> None:
    api = FakeCoreV1Api.replaying("succeeded")
    values = evaluate(POD_CONFIGS[0], {"input": {"v": value}})
    await run(api, ctx(**values))
    [pod] = api.created
    script = pod["spec"]["containers"][0]["command"][2]
    assert script == "printf '%s' '" + value.replace("'", "'\\''") + "'"
    assert _sh(script) == value.encode()


def test_a_nul_in_a_pod_script_fails_naming_the_item() -> None:
    with pytest.raises(ExpressionError, match=r"setting 'command\[2\]'.*NUL"):
        evaluate(POD_CONFIGS[0], {"input": {"v": "\x00"}})


def test_a_traced_attempts_pod_gets_traceparent_unless_the_step_sets_it() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def env(**config: Any) -> dict[str, str]:
        pod = pod_manifest(ctx(**config), parse_request(ctx(**config).config), PodDefaults(),
                           name="bs-k-1-abcdef")
        return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}

    assert "TRACEPARENT" not in env()
    with traceparent_bound(parent):
        assert env()["TRACEPARENT"] == parent
        assert env(env={"TRACEPARENT": "mine"})["TRACEPARENT"] == "mine"
