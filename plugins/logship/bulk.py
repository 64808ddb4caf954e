"""Log lines to Elasticsearch's (or OpenSearch's) bulk API: the sink of a `LogBatcher`.

One batch is one `POST /_bulk` of NDJSON `create` actions (they work for an index and for a
data stream alike), each document the line's fields plus `@timestamp`. A request that fails
as a whole (no connection, 429, 5xx) is retried with exponential backoff and jitter on the
next node, `retries` times; then `ShipError` hands the batch back to the batcher's buffer, so
an Elasticsearch that comes back gets the lines. An answer with `"errors": true` is settled
item by item: items refused with 429 or 5xx are retried (within the same `retries`), the
others (a mapping error, 4xx) are dropped and counted as `failed` — nothing loops forever.
"""
from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from .es_config import DATE, DATE_FORMAT, Auth, ElasticConfig

if TYPE_CHECKING:
    from baseshift.core.app.logbatch import Line

NDJSON = "application/x-ndjson"
LONGEST_WAIT = 30.0
Warn = Callable[..., None]


class ShipError(Exception):
    """Every try of a whole batch failed: the batch goes back to the buffer."""


class _Unreachable(Exception):
    """This try failed as a whole and may work later (no connection, 429, 5xx)."""


class _Refused(Exception):
    """Elasticsearch refused the request as a whole (a 4xx other than 429)."""


@dataclass
class ShipCounts:
    """What became of the lines the batcher handed over."""

    shipped: int = 0
    failed: int = 0
    """Refused by Elasticsearch (4xx), or still refused with 429/5xx after every retry."""


class BulkShipper:
    """Ships batches of lines; see the module docstring. `deadline` (a loop time), set at
    shutdown, stops retries and shortens requests so that the last flush is bounded."""

    def __init__(self, config: ElasticConfig, auth: Auth, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self.counts = ShipCounts()
        self.deadline: float | None = None
        self.warn: Warn = lambda *args: None
        """Where refused lines are reported (the batcher's throttled warning)."""
        self._headers = {"Content-Type": NDJSON, "Accept": "application/json"}
        if auth.header:
            self._headers["Authorization"] = auth.header
        self._node = 0

    async def send(self, lines: list[Line]) -> None:
        """Ship `lines`; ShipError when no try of the whole batch got an answer."""
        pending = [document(line, self.config.index) for line in lines]
        problem = ""
        for attempt in range(self.config.retries + 1):
            if attempt and not await self._pause(attempt):
                break
            try:
                pending = self._settle(pending, await self._post(b"".join(pending)))
            except _Unreachable as exc:
                problem = str(exc)
                self._node = (self._node + 1) % len(self.config.nodes)
                continue
            except _Refused as exc:
                self._refused(len(pending), str(exc))
                return
            problem = ""
            if not pending:
                return
        if problem and len(pending) == len(lines):
            raise ShipError(problem)
        self._refused(len(pending), problem or "still refused after every retry")

    async def _post(self, body: bytes) -> dict[str, Any]:
        url = f"{self.config.nodes[self._node]}/_bulk"
        try:
            response = await self.client.post(url, content=body, headers=self._headers,
                                              timeout=self._timeout())
        except httpx.HTTPError as exc:
            raise _Unreachable(f"{url}: {type(exc).__name__} {exc}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Unreachable(f"{url} answered {status}")
        if status >= 300:
            raise _Refused(f"{url} answered {status}")
        try:
            answer = response.json()
        except ValueError:
            raise _Unreachable(f"{url} answered with no bulk result") from None
        if not isinstance(answer, dict):
            raise _Unreachable(f"{url} answered with no bulk result")
        return answer

    def _settle(self, pending: list[bytes], answer: dict[str, Any]) -> list[bytes]:
        """Count what the answer accepted and refused; return the items to try again."""
        items = answer.get("items")
        if not answer.get("errors"):
            self.counts.shipped += len(pending)
            return []
        if not isinstance(items, list) or len(items) != len(pending):
            raise _Unreachable("a bulk answer whose items do not match the request")
        again: list[bytes] = []
        refused: Counter[str] = Counter()
        for doc, item in zip(pending, items, strict=True):
            status, kind = _outcome(item)
            if status < 300:
                self.counts.shipped += 1
            elif status == 429 or status >= 500:
                again.append(doc)
            else:
                refused[kind] += 1
        if refused:
            self._refused(refused.total(), ", ".join(f"{k} ×{n}" for k, n in refused.items()))
        return again

    def _refused(self, count: int, why: str) -> None:
        if count:
            self.counts.failed += count
            self.warn("Elasticsearch refused %d log lines: %s", count, why)

    async def _pause(self, attempt: int) -> bool:
        """Wait before retry `attempt`; False when the shutdown deadline comes first."""
        wait = min(LONGEST_WAIT, self.config.backoff * 2 ** (attempt - 1))
        wait *= 0.5 + random.random() / 2  # jitter: many processes must not retry in step
        now = asyncio.get_running_loop().time()
        if self.deadline is not None and now + wait >= self.deadline:
            return False
        await asyncio.sleep(wait)
        return True

    def _timeout(self) -> float:
        if self.deadline is None:
            return self.config.timeout
        left = self.deadline - asyncio.get_running_loop().time()
        return max(0.1, min(self.config.timeout, left))


def document(line: Line, index: str) -> bytes:
    """The two NDJSON lines of `line`: its `create` action and the document."""
    stamp = line.get("timestamp")
    day = _day(stamp)
    action = {"create": {"_index": index.replace(DATE, day.strftime(DATE_FORMAT))}}
    doc = {"@timestamp": stamp if isinstance(stamp, str) else day.isoformat(), **line}
    return (json.dumps(action, separators=(",", ":")) + "\n"
            + json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)
            + "\n").encode()


def _day(stamp: object) -> datetime:
    """When the line was logged (UTC), or now for a line without a readable timestamp."""
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _outcome(item: object) -> tuple[int, str]:
    """The status and error type of one item of a bulk answer (`{"create": {...}}`)."""
    result = next(iter(item.values()), None) if isinstance(item, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("status"), int):
        return 500, "no status"
    error = result.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    return result["status"], str(kind or result["status"])
