"""The job graph: dependency cycles, a stable topological order and upstream queries.

All of it is linear in the number of jobs and `needs` edges, so 10,000-job workflows stay
fast: cycles and order come from one Kahn pass, and "is X upstream of Y" uses ancestor
sets as integer bitsets, built only when some expression reads a job it does not need
directly.
"""
from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def topological_order(names: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm, ties broken by declaration order; jobs in cycles are left out."""
    index = {n: i for i, n in enumerate(names)}
    waiting = {n: len(set(needs.get(n, ()))) for n in names}
    dependants: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for d in set(needs.get(n, ())):
            dependants[d].append(n)
    ready = [index[n] for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in dependants[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, index[child])
    return order


def find_cycles(names: Sequence[str], needs: Mapping[str, Sequence[str]],
                ordered: Sequence[str]) -> list[list[str]]:
    """One cycle per group of jobs stuck in a cycle, as `[a, b, c, a]` along `needs`."""
    left = set(names) - set(ordered)
    reported: set[str] = set()
    cycles = []
    for start in names:
        if start not in left or start in reported:
            continue
        path, seen = [start], {start: 0}
        node = start
        while True:
            node = next(d for d in needs[node] if d in left)
            if node in seen or node in reported:
                break
            seen[node] = len(path)
            path.append(node)
        reported.update(path)
        if node in seen:
            cycles.append([*path[seen[node]:], node])
    return cycles


class Ancestry:
    """Answers "does job `a` (transitively) need job `b`?" for an acyclic graph."""

    def __init__(self, ordered: Sequence[str], needs: Mapping[str, Sequence[str]]) -> None:
        self._ordered = ordered
        self._needs = needs
        self._bit = {n: 1 << i for i, n in enumerate(ordered)}
        self._ancestors: dict[str, int] | None = None

    def is_upstream(self, job: str, other: str) -> bool:
        direct = self._needs.get(job, ())
        if other in direct:
            return True
        if other not in self._bit or job not in self._bit:
            return False
        return bool(self._all()[job] & self._bit[other])

    def _all(self) -> dict[str, int]:
        if self._ancestors is None:
            ancestors: dict[str, int] = {}
            for name in self._ordered:  # parents come first in a topological order
                mask = 0
                for d in self._needs.get(name, ()):
                    mask |= self._bit.get(d, 0) | ancestors.get(d, 0)
                ancestors[name] = mask
            self._ancestors = ancestors
        return self._ancestors
