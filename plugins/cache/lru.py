"""The least-recently-used store of encoded values with deadlines: the memory cache's whole
state, and the Redis cache's near-cache in each process (the cache family's shared part)."""
from __future__ import annotations

import time
from collections import OrderedDict


class LRUStore:
    """Encoded values with an optional deadline, the least recently used dropped first once
    `max_entries` are held. Shared by this backend and the Redis backend's near-cache."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.evictions = 0
        self._items: OrderedDict[str, tuple[str, float | None]] = OrderedDict()

    def get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        text, deadline = item
        if deadline is not None and deadline <= time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return text

    def put(self, key: str, text: str, ttl: float | None) -> None:
        deadline = None if ttl is None else time.monotonic() + ttl
        self._items[key] = (text, deadline)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
            self.evictions += 1

    def pop(self, key: str) -> bool:
        """Drop `key`; whether it held a value that had not expired."""
        present = self.get(key) is not None
        self._items.pop(key, None)
        return present

    def clear(self) -> int:
        live = self.live()
        self._items.clear()
        return live

    def keys(self, prefix: str = "") -> list[str]:
        """The keys starting with `prefix` whose values have not expired, sorted."""
        now = time.monotonic()
        return sorted(k for k, (_, deadline) in self._items.items()
                      if k.startswith(prefix) and (deadline is None or deadline > now))

    def live(self) -> int:
        """How many values have not expired (a scan: for stats, not for hot paths)."""
        now = time.monotonic()
        return sum(1 for _, deadline in self._items.values() if deadline is None or deadline > now)
