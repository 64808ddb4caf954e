"""Counters, gauges and histograms of one process kept as plain Python numbers, and read as
prometheus_client families when the registry is collected (a scrape, the summary route).

Why: the engine updates several of them for every attempt and every job event, and a
prometheus_client update checks the metric, takes a lock and (a histogram) walks its
buckets: about as much work as the engine's own for a no-op job. Here an update is one
addition (a histogram's: a bisection and two). The exposition is the same: the names,
types, help, labels and samples (`_total` and `_created`, `_bucket` with `le`, `_count`,
`_sum`) prometheus_client writes for its own objects.

Updates are made by the event loop's thread only; a scrape from another thread (the
worker's `/metrics` port) reads copies, so at worst it misses the update being made. Not
for a fleet (`serve --processes N`, fleet.py): each process's values must reach the shared
files as they change, which prometheus_client's own objects do.
"""
from __future__ import annotations

import math
import time
from abc import abstractmethod
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)


class Counting(Protocol):
    """A counter's series (or an unlabelled counter), whichever kind."""

    def inc(self, amount: float = 1) -> None: ...


class Gauging(Counting, Protocol):
    def dec(self, amount: float = 1) -> None: ...


class Observing(Protocol):
    """A histogram's series, whichever kind."""

    def observe(self, amount: float) -> None: ...


class Family(Protocol[C_co]):
    """A labelled metric, prometheus_client's or one of these."""

    def labels(self, *values: str) -> C_co: ...

    def collect(self) -> Iterable[Metric]: ...


class _Family(Collector, Generic[C]):
    """One metric and its children by label values; an unlabelled metric is its own only
    child, as prometheus_client's are (`family.inc()`)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: CollectorRegistry | None = None) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], C] = {}
        if not self.labelnames:  # its one series exists from the start, at 0
            self.labels()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> C:
        """The child of these label values (made at its first use, as prometheus_client's:
        a series exists from then on)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values")
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = self._child()
        return found

    @abstractmethod
    def _child(self) -> C:
        """A new series of this kind of metric, at zero."""

    def _only(self) -> C:
        """The series of an unlabelled metric (made at the start)."""
        return self._children[()]

    def _series(self) -> list[tuple[list[str], C]]:
        """The children now, copied (another thread may be adding one)."""
        return [(list(values), child) for values, child in list(self._children.items())]

    def describe(self) -> list[Metric]:
        return list(self.collect())


class CounterChild:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class LocalCounter(_Family[CounterChild]):
    """prometheus_client's `Counter`, for one process (module docstring)."""

    def _child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1) -> None:
        self._only().inc(amount)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._series():
            family.add_metric(values, child.value,
                              created=child.created if _created() else None)
        yield family


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class LocalGauge(_Family[GaugeChild]):
    """prometheus_client's `Gauge`, for one process (module docstring)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: CollectorRegistry | None = None,
                 multiprocess_mode: str = "") -> None:
        """`multiprocess_mode` is accepted for prometheus_client's signature: there is no
        other process here."""
        super().__init__(name, documentation, labelnames, registry)

    def _child(self) -> GaugeChild:
        return GaugeChild()

    def inc(self, amount: float = 1) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._only().dec(amount)

    def set(self, value: float) -> None:
        self._only().set(value)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._series():
            family.add_metric(values, child.value)
        yield family


class HistogramChild:
    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        """Observations per bucket (not cumulative): the first whose bound is >= the value."""
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.sum += amount
        self.counts[bisect_left(self.bounds, amount)] += 1

    def observe_many(self, amounts: Iterable[float]) -> None:
        """`observe` each of `amounts`, with no call for each."""
        counts, bounds = self.counts, self.bounds
        total = self.sum
        for amount in amounts:
            total += amount
            counts[bisect_left(bounds, amount)] += 1
        self.sum = total


class LocalHistogram(_Family[HistogramChild]):
    """prometheus_client's `Histogram`, for one process (module docstring)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: CollectorRegistry | None = None,
                 buckets: Sequence[float] = ()) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = tuple(bounds)
        self._les = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]
        super().__init__(name, documentation, labelnames, registry)

    def _child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, amount: float) -> None:
        self._only().observe(amount)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._series():
            counts, total = list(child.counts), child.sum
            cumulative, buckets = 0, []
            for le, count in zip(self._les, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(values, buckets, total)
            if _created():  # prometheus_client writes it, its family cannot be given it
                family.add_sample(f"{self.name}_created", dict(zip(self.labelnames, values,
                                                                   strict=True)),
                                  child.created)
        yield family


def observe_each(series: Observing, amounts: Iterable[float]) -> None:
    """`series.observe` each of `amounts`: at once for one of these histograms' series
    (`observe_many`), one at a time for prometheus_client's."""
    if type(series) is HistogramChild:
        series.observe_many(amounts)
        return
    for amount in amounts:
        series.observe(amount)


def _created() -> bool:
    """Whether `_created` series are written: prometheus_client's switch
    (`disable_created_metrics()`, `PROMETHEUS_DISABLE_CREATED_SERIES`), read as it does."""
    return bool(prometheus_metrics._use_created)
