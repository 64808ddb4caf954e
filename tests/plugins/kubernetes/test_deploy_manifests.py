"""deploy/kubernetes/: kubectl accepts the manifests (client-side dry run), every object
matches the Kubernetes API's schema, and the pieces refer to each other consistently.

`kubectl apply --dry-run=client` still asks a server which kinds exist (discovery) and
whether each object exists already. No cluster runs here, so a loopback server answers
exactly that: the discovery documents of the kinds the manifests use, and 404 for every
object. Field validation needs the cluster's OpenAPI document, which we cannot fetch, so
kubectl runs with --validate=false and the schema check is done with the official client's
models (generated from that OpenAPI document; they refuse unknown and mistyped fields).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from ruamel.yaml import YAML

from baseshift.core.config import read_config
from baseshift.core.settings import Settings
from baseshift.plugins.kubernetes.options import KubeOptions

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy" / "kubernetes"
KUBECTL_PACKAGE = "kubernetes-client"
"""The Debian package that installs /usr/bin/kubectl."""

_RESOURCES = {
    "v1": [("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True),
           ("secrets", "Secret", True), ("services", "Service", True),
           ("serviceaccounts", "ServiceAccount", True), ("pods", "Pod", True)],
    "apps/v1": [("deployments", "Deployment", True)],
    "rbac.authorization.k8s.io/v1": [("roles", "Role", True),
                                     ("rolebindings", "RoleBinding", True)],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
}
_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _discovery(path: str) -> dict[str, Any] | None:
    """The legacy discovery document for `path`, or None (404)."""
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        groups = [gv for gv in _RESOURCES if "/" in gv]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": gv.split("/")[0],
             "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
             "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
            for gv in groups]}
    group_version = path.removeprefix("/api/").removeprefix("/apis/")
    if path.startswith(("/api/", "/apis/")) and group_version in _RESOURCES:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": [{"name": name, "singularName": kind.lower(), "kind": kind,
                               "namespaced": namespaced, "verbs": _VERBS}
                              for name, kind, namespaced in _RESOURCES[group_version]]}
    return None


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        document = _discovery(self.path.split("?")[0])
        if document is None:
            document = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"}
        body = json.dumps(document).encode()
        self.send_response(200 if document.get("kind") != "Status" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig naming a loopback server that answers discovery and nothing else."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dry-run",
        "clusters": [{"name": "dry-run",
                      "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "contexts": [{"name": "dry-run", "context": {"cluster": "dry-run", "user": "none"}}],
        "users": [{"name": "none", "user": {}}]}))
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(f"kubectl is not installed: apt-get install -y {KUBECTL_PACKAGE}")
    return kubectl


def test_kubectl_accepts_the_manifests_in_a_client_dry_run(kubeconfig: Path,
                                                           tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    result = subprocess.run(
        [_kubectl(), "apply", "--dry-run=client", "--validate=false", "-f", str(DEPLOY)],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    applied = sorted(line.removesuffix(" created (dry run)")
                     for line in result.stdout.splitlines())
    assert applied == sorted(f"{_resource(doc)}/{doc['metadata']['name']}"
                             for doc in _documents())


def test_kubectl_would_refuse_an_unknown_kind(kubeconfig: Path, tmp_path: Path) -> None:
    """The dry run is a real check: a manifest kubectl cannot map is an error."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    result = subprocess.run(
        [_kubectl(), "apply", "--dry-run=client", "--validate=false", "-f", str(bad)],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Deploymnet" in result.stderr


def _resource(doc: dict[str, Any]) -> str:
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    kind = doc["kind"].lower()
    return f"{kind}.{group}" if group else kind


def _documents() -> list[dict[str, Any]]:
    yaml = YAML(typ="safe")
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs.extend(d for d in yaml.load_all(path.read_text()) if d is not None)
    return docs


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] == kind]


def test_every_object_matches_the_api_schema() -> None:
    docs = _documents()
    assert {d["kind"] for d in docs} == {"Namespace", "ConfigMap", "ServiceAccount", "Role",
                                         "RoleBinding", "Deployment", "Service",
                                         "HorizontalPodAutoscaler"}
    for doc in docs:
        version = doc["apiVersion"].split("/")[-1].capitalize()  # V1, V2
        model = getattr(kubernetes.client, f"{version}{doc['kind']}")
        model.model_validate(doc)  # raises on an unknown field or a wrong type


def test_the_schema_check_catches_a_misspelled_field() -> None:
    from pydantic import ValidationError

    [server, *_] = _by_kind("Deployment")
    server["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(ValidationError, match="imagePullPolcy"):
        kubernetes.client.V1Deployment.model_validate(server)


def test_the_config_map_is_a_valid_baseshift_toml(tmp_path: Path) -> None:
    [config_map] = _by_kind("ConfigMap")
    path = tmp_path / "baseshift.toml"
    path.write_text(config_map["data"]["baseshift.toml"])
    values = read_config(path)  # the server's own reader: unknown keys are errors
    assert values["store"] == values["queue"] == values["templates"] == "postgres"
    assert values["database_url"].startswith("postgresql://")
    assert values["redis_url"].startswith("redis://")
    options = KubeOptions.from_settings(Settings(extra=values["extra"]))
    assert options.defaults.namespace == _namespace()


def _namespace() -> str:
    [namespace] = _by_kind("Namespace")
    name: str = namespace["metadata"]["name"]
    return name


def test_every_object_lives_in_the_one_namespace() -> None:
    namespace = _namespace()
    for doc in _documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]


@pytest.mark.parametrize(("name", "command"), [
    ("baseshift-server", ["baseshift", "serve", "--host", "0.0.0.0"]),
    ("baseshift-worker", ["baseshift", "worker"]),
])
def test_the_deployments_mount_the_config_map_they_name(name: str, command: list[str]) -> None:
    [config_map] = _by_kind("ConfigMap")
    [deployment] = [d for d in _by_kind("Deployment") if d["metadata"]["name"] == name]
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    [container] = pod["spec"]["containers"]
    assert container["command"][: len(command)] == command
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    env = {e["name"]: e for e in container["env"]}
    config_file = Path(env["BASESHIFT_CONFIG"]["value"])
    volume = volumes[mounts[str(config_file.parent)]]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert config_file.name in config_map["data"]
    settings = tomllib.loads(config_map["data"][config_file.name])["baseshift"]
    assert settings["data_dir"] in mounts  # jobs write there; the root file system is read-only
    for secret in ("BASESHIFT_DATABASE_URL", "BASESHIFT_REDIS_URL"):
        assert env[secret]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert pod["spec"]["serviceAccountName"] == _role_subject()


def _role_subject() -> str:
    [binding] = _by_kind("RoleBinding")
    [subject] = binding["subjects"]
    [account] = _by_kind("ServiceAccount")
    assert subject["name"] == account["metadata"]["name"]
    [role] = _by_kind("Role")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    return str(subject["name"])


def test_the_role_grants_what_the_executor_calls() -> None:
    [role] = _by_kind("Role")
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"]
               for verb in rule["verbs"]}
    needed = {("pods", "create"), ("pods", "get"), ("pods", "list"), ("pods", "watch"),
              ("pods", "delete"), ("pods/log", "get")}
    assert needed <= granted


def test_the_service_selects_the_server_pods_and_port() -> None:
    [service] = _by_kind("Service")
    [server] = [d for d in _by_kind("Deployment") if d["metadata"]["name"] == "baseshift-server"]
    pod = server["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    [port] = service["spec"]["ports"]
    assert port["targetPort"] in ports
    command = pod["spec"]["containers"][0]["command"]
    assert command[command.index("--port") + 1] == str(ports[port["targetPort"]])


def test_the_autoscaler_scales_the_workers_on_a_metric_the_servers_export() -> None:
    [hpa] = _by_kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    deployments = {d["metadata"]["name"]: d for d in _by_kind("Deployment")}
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    assert deployments[target["name"]]["spec"]["template"]["spec"]["containers"][0][
        "command"][:2] == ["baseshift", "worker"]
    [metric] = hpa["spec"]["metrics"]
    name = metric["external"]["metric"]["name"]
    collector = (REPO / "plugins" / "metrics" / "collector.py").read_text()
    assert f'"{name}"' in collector  # a metric plugins/metrics really exports
    assert f"`{name}`" in (REPO / "docs" / "operations.md").read_text()
    assert metric["external"]["metric"]["selector"]["matchLabels"] == {"state": "queued"}
