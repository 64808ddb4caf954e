"""A fake CoreV1Api: the one place the kubernetes executor tests stand in for a cluster.

It answers the four calls the executor makes. `list_namespaced_pod(watch=True)` returns a
streaming response of JSON lines, read by the real `kubernetes.watch.Watch`, that replays a
recorded watch (a list of rounds: every round but the last ends as the server's watch
timeout ends it; the last stays open until the watch is stopped or the pod deleted, unless
it is empty).
"""
from __future__ import annotations

import copy
import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kubernetes.client.exceptions import ApiException

RECORDINGS = Path(__file__).parent / "watch"


def recording(name: str) -> dict[str, Any]:
    """A recorded watch: {"rounds": [[event, ...], ...], "log": text or null}."""
    data: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return data


class _Socket:
    def __init__(self, feed: queue.Queue[bytes | None]) -> None:
        self._feed = feed

    def shutdown(self, how: int) -> None:  # what Watch.stop() does to end a blocked read
        self._feed.put(None)


class WatchResponse:
    """A urllib3-like streaming response of watch events, one JSON object per line."""

    status = 200

    def __init__(self, lines: list[bytes], feed: queue.Queue[bytes | None] | None) -> None:
        self._lines = lines
        self._feed = feed
        self.connection = SimpleNamespace(sock=_Socket(feed) if feed is not None else None)
        self.closed = False

    def stream(self, amt: int | None = None, decode_content: bool = False) -> Iterator[bytes]:
        yield from self._lines
        while self._feed is not None:
            line = self._feed.get()
            if line is None:
                return
            yield line

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


class FakeCoreV1Api:
    """Records what the executor asks for and replays a recorded watch for the pod it made."""

    def __init__(self, rounds: list[list[dict[str, Any]]], log: str | None = "", *,
                 create_error: Exception | None = None, log_error: Exception | None = None,
                 create_gate: threading.Event | None = None,
                 watch_error: Exception | None = None,
                 delete_error: Exception | None = None) -> None:
        self.rounds = rounds
        self.watch_error = watch_error
        self.delete_error = delete_error
        self.threads: set[int] = set()
        """The threads the calls came from (the event loop's must not be one of them)."""
        self.log_text = log
        self.create_error = create_error
        self.log_error = log_error
        self.create_gate = create_gate
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.log_reads: list[tuple[str, str, str | None]] = []
        self.watches: list[dict[str, Any]] = []
        self.last_object: dict[str, Any] | None = None
        self._open: list[queue.Queue[bytes | None]] = []
        self._lock = threading.Lock()
        self.create_started = threading.Event()

    @classmethod
    def replaying(cls, name: str, **options: Any) -> FakeCoreV1Api:
        data = recording(name)
        return cls(data["rounds"], data["log"], **options)

    # -------------------------------------------------------------- the CoreV1Api calls

    def create_namespaced_pod(self, namespace: str, body: dict[str, Any],
                              **kwargs: Any) -> dict[str, Any]:
        self.threads.add(threading.get_ident())
        self.create_started.set()
        if self.create_gate is not None:
            self.create_gate.wait(30)
        if self.create_error is not None:
            raise self.create_error
        assert body["metadata"]["namespace"] == namespace
        self.created.append(copy.deepcopy(body))
        return body

    def list_namespaced_pod(self, namespace: str, *, field_selector: str, watch: bool,
                            _preload_content: bool, timeout_seconds: int,
                            **kwargs: Any) -> WatchResponse:
        assert watch is True and _preload_content is False
        self.threads.add(threading.get_ident())
        if self.watch_error is not None:
            raise self.watch_error
        name = field_selector.removeprefix("metadata.name=")
        with self._lock:
            index = sum(1 for w in self.watches if w["name"] == name)  # rounds are per pod
            self.watches.append({"namespace": namespace, "name": name,
                                 "timeout_seconds": timeout_seconds})
            events = self.rounds[index] if index < len(self.rounds) else []
            lines = [self._line(event, namespace, name) for event in events]
            # an empty round shows a pod that is gone: the server's timeout ends it
            last = index >= len(self.rounds) - 1 and bool(events)
            feed: queue.Queue[bytes | None] | None = queue.Queue() if last else None
            if feed is not None:
                self._open.append(feed)
        return WatchResponse(lines, feed)

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str | None = None,
                                **kwargs: Any) -> str:
        self.threads.add(threading.get_ident())
        self.log_reads.append((namespace, name, container))
        if self.log_error is not None:
            raise self.log_error
        if self.log_text is None:
            raise ApiException(status=400, reason="Bad Request", body=json.dumps(
                {"kind": "Status", "message": f'container "{container}" in pod "{name}" is '
                                              "waiting to start: trying and failing to pull"}))
        return self.log_text

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
        self.threads.add(threading.get_ident())
        if self.delete_error is not None:
            raise self.delete_error
        if not any(p["metadata"]["name"] == name for p in self.created):
            raise ApiException(status=404, reason="Not Found")
        self.deleted.append((namespace, name))
        gone = copy.deepcopy(self.last_object or {"metadata": {}})
        gone["metadata"]["deletionTimestamp"] = "2026-11-28T10:01:00Z"
        line = json.dumps({"type": "DELETED", "object": gone}).encode() + b"\n"
        with self._lock:
            for feed in self._open:
                feed.put(line)

    # -------------------------------------------------------------- helpers

    def _line(self, event: dict[str, Any], namespace: str, name: str) -> bytes:
        """The recorded event, about the pod the executor created."""
        event = copy.deepcopy(event)
        event["object"]["metadata"].update(name=name, namespace=namespace)
        self.last_object = event["object"]
        return json.dumps(event).encode() + b"\n"

    def close_watches(self) -> None:
        """End every open watch (as a dropped connection would)."""
        with self._lock:
            for feed in self._open:
                feed.put(None)
