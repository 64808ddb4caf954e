"""The Pod a `kubernetes` job becomes: its `with` block checked and its manifest built.

Pure data in, data out (no client, no I/O), so the manifest for a given job is a golden file.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from baseshift.core.errors import ExecutionError
from baseshift.core.protocols import JobContext
from baseshift.core.tracecontext import traceparent

CONTAINER = "job"
"""The name of the pod's only container (its log is the job's log)."""

LABEL_PREFIX = "baseshift.io/"
BASE_LABELS = {"app": "base-shift", "component": "job-executor"}
"""The seed's pod labels, so `kubectl get pods -l app=base-shift` lists every job pod."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
                       r"([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")

_SCALAR = {"type": ["string", "number", "boolean"], "description": "Numbers and booleans "
           "are passed as text."}
_QUANTITIES = {"type": "object", "additionalProperties": {"type": ["string", "number"]},
               "description": 'Resource name to quantity, e.g. {cpu: "250m", memory: "64Mi"}.'}
WITH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "minLength": 1, "description": "The container image."},
        "command": {"type": "array", "items": _SCALAR, "minItems": 1, "x-shell": "argv",
                    "description": "Replaces the image's entrypoint."},
        "args": {"type": "array", "items": _SCALAR, "x-shell": "argv",
                 "description": "Arguments to the command (or to the image's entrypoint); "
                 "after sh -c, the script quotes each ${...} as one word."},
        "env": {"type": "object", "additionalProperties": _SCALAR,
                "description": "Environment variables of the container."},
        "resources": {"type": "object",
                      "properties": {"requests": _QUANTITIES, "limits": _QUANTITIES},
                      "additionalProperties": False},
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Extra pod labels."},
        "namespace": {"type": "string", "minLength": 1,
                      "description": "Overrides the configured namespace for this job."},
    },
    "required": ["image"],
    "additionalProperties": False,
}
"""JSON Schema of the `with` block (the executor's `config_schema`)."""


@dataclass(frozen=True, slots=True)
class PodRequest:
    """A checked `with` block."""

    image: str
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    resources: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class PodDefaults:
    """What the plugin's configuration adds to every pod."""

    namespace: str = "default"
    labels: tuple[tuple[str, str], ...] = ()
    service_account: str | None = None


def parse_request(config: Mapping[str, Any]) -> PodRequest:
    """Check the evaluated `with` block (its values may come from expressions, so the
    schema check at `baseshift check` time is not enough); ExecutionError names the key."""
    unknown = sorted(set(config) - set(WITH_SCHEMA["properties"]))
    if unknown:
        raise ExecutionError(f"unknown key '{unknown[0]}' in the with-block; known keys: "
                             f"{', '.join(WITH_SCHEMA['properties'])}")
    image = config.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ExecutionError(f"'image' must be a non-empty string, got {image!r}")
    namespace = config.get("namespace")
    if namespace is not None:
        check_dns_label("namespace", namespace)
    return PodRequest(
        image=image, command=_strings(config, "command"), args=_strings(config, "args"),
        env=_env(config.get("env")), resources=_resources(config.get("resources")),
        labels=check_labels("labels", config.get("labels")), namespace=namespace,
    )


def pod_name(job: str, attempt: int, suffix: str) -> str:
    """`bs-<job>-<attempt>-<suffix>`: a DNS label (what a pod's hostname must be), unique per
    attempt through the random suffix (a template's steps start several pods per attempt)."""
    return f"bs-{_slug(job, 40)}-{attempt}-{suffix}"


def pod_manifest(ctx: JobContext, request: PodRequest, defaults: PodDefaults, *,
                 name: str) -> dict[str, Any]:
    """The Pod to create for one attempt, as the JSON the API takes."""
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [_container(ctx, request)]}
    if ctx.timeout is not None:
        # the job timeout deletes the pod; the deadline also ends it if the server is gone
        spec["activeDeadlineSeconds"] = max(1, math.ceil(ctx.timeout))
    if defaults.service_account:
        spec["serviceAccountName"] = defaults.service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": request.namespace or defaults.namespace,
            "labels": {**BASE_LABELS, **dict(defaults.labels), **dict(request.labels),
                       **_own_labels(ctx)},
            # labels must be short and plain; the exact run id and job name go here
            "annotations": {f"{LABEL_PREFIX}run-id": ctx.run_id, f"{LABEL_PREFIX}job": ctx.job},
        },
        "spec": spec,
    }


def _container(ctx: JobContext, request: PodRequest) -> dict[str, Any]:
    env = {"BASESHIFT_RUN_ID": ctx.run_id, "BASESHIFT_JOB": ctx.job,
           "BASESHIFT_ATTEMPT": str(ctx.attempt)}
    if parent := traceparent():  # tracing on (docs/operations.md "Traces")
        env["TRACEPARENT"] = parent
    env.update(request.env)
    container: dict[str, Any] = {"name": CONTAINER, "image": request.image}
    if request.command is not None:
        container["command"] = list(request.command)
    if request.args is not None:
        container["args"] = list(request.args)
    container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if request.resources:
        container["resources"] = {kind: dict(values) for kind, values in request.resources}
    return container


def _own_labels(ctx: JobContext) -> dict[str, str]:
    return {f"{LABEL_PREFIX}run-id": label_value(ctx.run_id),
            f"{LABEL_PREFIX}job": label_value(ctx.job),
            f"{LABEL_PREFIX}attempt": str(ctx.attempt)}


def label_value(text: str) -> str:
    """`text` made into a valid label value (fan-out jobs are named like `ship[3]`)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower())[:limit].strip("-")
    return slug or "job"


def check_dns_label(key: str, value: Any) -> str:
    """`value` if it is a DNS label (namespaces, service accounts), else ExecutionError."""
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise ExecutionError(f"'{key}' must be a DNS label (lower-case letters, digits and "
                             f"'-', at most 63 characters), got {value!r}")
    return value


def check_labels(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """Checked pod labels; the `baseshift.io/` prefix is reserved for the executor's own."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ExecutionError(f"'{key}' must be an object of strings, got {value!r}")
    for name, text in value.items():
        if not isinstance(name, str) or not _label_key_ok(name):
            raise ExecutionError(f"'{key}': {name!r} is not a valid label key")
        if name.startswith(LABEL_PREFIX):
            raise ExecutionError(f"'{key}': the label prefix '{LABEL_PREFIX}' is reserved "
                                 "for the labels Base Shift sets")
        if not isinstance(text, str) or (text and not _LABEL_NAME.fullmatch(text)):
            raise ExecutionError(f"'{key}': label '{name}' has value {text!r}; a label value "
                                 "is at most 63 letters, digits, '-', '_' or '.'")
    return tuple((str(k), str(v)) for k, v in value.items())


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_LABEL_NAME.fullmatch(name)) and (
        not prefix or bool(_DNS_SUBDOMAIN.fullmatch(prefix)))


def _strings(config: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    """A list of strings; numbers and booleans are written as text ("${input.epochs}" on
    its own evaluates to the number, and a container's argv can only hold text)."""
    value = config.get(key)
    if value is None:
        return None
    texts = [_text(v) for v in value] if isinstance(value, list) else [None]
    if any(t is None for t in texts):
        raise ExecutionError(f"'{key}' must be a list of strings, got {value!r}")
    return tuple(t for t in texts if t is not None)


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return _number(value)


def _env(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ExecutionError(f"'env' must be an object, got {value!r}")
    out = []
    for name, raw in value.items():
        if not isinstance(name, str) or not name or "=" in name:
            raise ExecutionError(f"'env': {name!r} is not a valid variable name")
        text = _text(raw)
        if text is None:
            raise ExecutionError(f"'env': {name} must be a string, number or boolean, "
                                 f"got {raw!r}")
        out.append((name, text))
    return tuple(out)


def _resources(value: Any) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not set(value) <= {"requests", "limits"}:
        raise ExecutionError("'resources' must be an object with 'requests' and/or "
                             f"'limits', got {value!r}")
    return tuple((kind, _quantities(kind, value[kind]))
                 for kind in ("requests", "limits") if value.get(kind))


def _quantities(kind: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ExecutionError(f"'resources.{kind}' must be an object, got {value!r}")
    out = []
    for name, raw in value.items():
        text = raw if isinstance(raw, str) else _number(raw)
        if text is None or not _QUANTITY.fullmatch(text):
            raise ExecutionError(f"'resources.{kind}.{name}' has value {raw!r}, which is not a "
                                 'Kubernetes quantity such as "250m", "0.5" or "64Mi"')
        out.append((str(name), text))
    return tuple(out)


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(value) if isinstance(value, int) or not value.is_integer() else str(int(value))
