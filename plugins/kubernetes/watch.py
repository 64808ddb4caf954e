"""A job pod's life as seen through watch events: a state machine that turns the stream of
pod objects into one verdict (succeeded, or failed with a reason a person understands).

Pure: it reads pod objects as the API sends them (camelCase JSON) and never calls the client,
so recorded event sequences drive it in tests exactly as a cluster does.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .pods import CONTAINER

GONE = "GONE"
"""Pseudo event type: a fresh watch showed no pod at all (deleted while we were not looking)."""

PULL_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                         "ErrImageNeverPull"})
CREATE_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
"""Waiting reasons that the kubelet would retry forever: a bad image or a missing secret
does not fix itself, so the attempt fails at once instead of at its timeout."""

_PLAIN_REASONS = frozenset({None, "", "Error", "Completed"})


class PodPhase(enum.Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> PodPhase:
        try:
            return cls(_get(pod, "status", "phase"))
        except ValueError:
            return cls.PENDING  # a pod just created may have no status yet


_ALL = frozenset(PodPhase)
NEXT: dict[PodPhase | None, frozenset[PodPhase]] = {
    None: _ALL,
    PodPhase.PENDING: _ALL,
    PodPhase.RUNNING: _ALL - {PodPhase.PENDING},
    # Unknown: the node stopped reporting; it may come back with the pod still running
    PodPhase.UNKNOWN: _ALL - {PodPhase.PENDING},
    PodPhase.SUCCEEDED: frozenset(),
    PodPhase.FAILED: frozenset(),
}
"""Which phase may follow which (restartPolicy Never: a pod never goes back to Pending).
An event that breaks the table is stale (an older object seen after a reconnect): ignored."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the pod ended. `ran`: its container started, so it has a log worth reading;
    `with_log`: the failure message should end with the last lines of that log."""

    succeeded: bool
    message: str = ""
    ran: bool = True
    with_log: bool = False


class PodTracker:
    """Feeds on watch events of one pod; `observe` returns the verdict once there is one."""

    def __init__(self, name: str, log: Callable[[str], None]) -> None:
        self.name = name
        self.phase: PodPhase | None = None
        self._log = log
        self._noted: set[str] = set()

    def observe(self, kind: str, pod: Mapping[str, Any]) -> Verdict | None:
        if kind == GONE:
            return Verdict(False, f"pod {self.name} no longer exists: it was deleted before it "
                                  "finished", ran=self._ran)
        phase = PodPhase.of(pod)
        if phase not in NEXT[self.phase]:
            self._note(f"ignoring a stale event ({phase.value} after {_value(self.phase)})")
            return None
        self._enter(phase, pod)
        if phase is PodPhase.SUCCEEDED:
            return Verdict(True)
        if kind == "DELETED" or _get(pod, "metadata", "deletionTimestamp"):
            # we delete only after the verdict, so someone else is deleting it; the exit code
            # of a container stopped for that would mislead
            return Verdict(False, f"pod {self.name} was deleted before it finished (kubectl "
                                  "delete, a node drain or an eviction)", ran=self._ran)
        if phase is PodPhase.FAILED:
            return failed(pod)
        problem = waiting_problem(pod)
        if problem is not None:
            return Verdict(False, problem, ran=False)
        self._note_unschedulable(pod)
        return None

    @property
    def _ran(self) -> bool:
        return self.phase not in (None, PodPhase.PENDING)

    def _enter(self, phase: PodPhase, pod: Mapping[str, Any]) -> None:
        if phase is self.phase:
            return
        self.phase = phase
        node = _get(pod, "spec", "nodeName")
        where = f" on node {node}" if node and phase is PodPhase.RUNNING else ""
        self._log(f"pod {self.name}: {phase.value}{where}")

    def _note_unschedulable(self, pod: Mapping[str, Any]) -> None:
        """Say once why the pod waits for a node; not a failure: an autoscaler may add one."""
        for condition in _get(pod, "status", "conditions") or ():
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                why = condition.get("message") or condition.get("reason")
                self._note(f"not scheduled yet: {why}")

    def _note(self, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self._log(f"pod {self.name}: {text}")


def failed(pod: Mapping[str, Any]) -> Verdict:
    """Why a pod in phase Failed failed."""
    problem = waiting_problem(pod)
    if problem is not None:  # e.g. the deadline passed while the image could not be pulled
        return Verdict(False, problem, ran=False)
    terminated = _state(pod, "terminated")
    reason = _get(pod, "status", "reason")
    if reason or terminated is None:
        # the pod's own reason (DeadlineExceeded, Evicted) explains more than the exit code
        # of the container the kubelet stopped for it
        detail = ": ".join(str(p) for p in (reason, _get(pod, "status", "message")) if p)
        return Verdict(False, f"the pod failed: {detail}" if detail else "the pod failed",
                       ran=terminated is not None)
    if terminated.get("reason") == "OOMKilled":
        limit = _memory_limit(pod)
        return Verdict(False, "the container was killed: out of memory "
                              f"({f'limit {limit}' if limit else 'no memory limit set'})")
    return Verdict(False, _exit_message(terminated), with_log=True)


def waiting_problem(pod: Mapping[str, Any]) -> str | None:
    """Why the container cannot start, when waiting longer will not help; else None."""
    waiting = _state(pod, "waiting")
    if waiting is None:
        return None
    reason, message = waiting.get("reason"), waiting.get("message") or waiting.get("reason")
    if reason in PULL_ERRORS:
        return f"image '{_image(pod)}' could not be pulled: {message}"
    if reason in CREATE_ERRORS:
        return f"the container could not be created: {message}"
    return None


def _exit_message(terminated: Mapping[str, Any]) -> str:
    code, reason = terminated.get("exitCode"), terminated.get("reason")
    text = f"the container exited with {code}"
    if reason not in _PLAIN_REASONS:
        text += f" ({reason})"
    detail = terminated.get("message")
    return f"{text}: {detail.strip()}" if isinstance(detail, str) and detail.strip() else text


def _state(pod: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    for status in _get(pod, "status", "containerStatuses") or ():
        if status.get("name") == CONTAINER:
            found = (status.get("state") or {}).get(key)
            return found if isinstance(found, Mapping) else None
    return None


def _container_spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for container in _get(pod, "spec", "containers") or ():
        if container.get("name") == CONTAINER:
            return dict(container)
    return {}


def _image(pod: Mapping[str, Any]) -> str:
    return str(_container_spec(pod).get("image", "?"))


def _memory_limit(pod: Mapping[str, Any]) -> str | None:
    limits = (_container_spec(pod).get("resources") or {}).get("limits") or {}
    value = limits.get("memory")
    return str(value) if value is not None else None


def _get(data: Mapping[str, Any], *keys: str) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _value(phase: PodPhase | None) -> str:
    return phase.value if phase is not None else "nothing"
