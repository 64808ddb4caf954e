"""What other plugins' collectors say of one process of a fleet, copied into the fleet's
shared files (fleet.py), so that a scrape answers every process's whichever one answers it.

Plugins report their own figures through a collector on the metrics registry, read when
Prometheus scrapes: the log shippers' counters (plugins/logship/metrics.py), the alerts
firing (plugins/alerts/metrics.py). In one process that is right. In a fleet
(`serve --processes N`) a scrape reaches one process of N: read there, a counter would jump
between that process's count and another's, which Prometheus takes for resets, and the
alerts firing would read 0 whenever a process that does not evaluate them answered. So in a
fleet every process copies them, every few seconds and before it answers a scrape: a
counter's growth is added to a counter of the shared files (summed over every process,
those that ended too, as prometheus_client keeps a counter); a gauge is set in one summed
over the live processes (`livesum`), and a series that is no longer reported is set to 0.
Other kinds (histograms, summaries) are not copied: no plugin reports one, and a warning
says so if one does.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import Metric

from baseshift.core.clock import Clock
from baseshift.core.periodic import Periodic

log = logging.getLogger("baseshift.metrics")

MIRROR_SECONDS = 5.0
"""How often each process of a fleet copies its plugins' figures (a tenth of a typical
scrape interval would be 1.5 s; 5 s keeps them at most one scrape late at 15 s)."""

M = TypeVar("M", Counter, Gauge)
Series = tuple[str, tuple[str, ...]]
"""A metric's name and one label set's values."""


class RegistryMirror(Periodic):
    """Copies what `registry`'s collectors answer into the shared files (module docstring):
    `copy` now, `start` to copy every `interval` seconds."""

    task_name = "baseshift-metrics-mirror"
    failure = "copying the plugins' metrics into the fleet's files failed"

    def __init__(self, registry: CollectorRegistry, interval: float = MIRROR_SECONDS,
                 clock: Clock | None = None) -> None:
        super().__init__(clock, interval, log)
        self.registry = registry
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._told: dict[Series, float] = {}
        """Each counter series's value as last copied: only its growth is added."""
        self._set: set[Series] = set()
        """The gauge series set so far (one not reported any more is set to 0)."""
        self._warned: set[str] = set()

    async def tick(self) -> None:
        self.copy()

    def copy(self) -> None:
        """Copy every counter and gauge the registry's collectors answer now."""
        reported: set[Series] = set()
        for family in self.registry.collect():
            if family.type == "counter":
                self._counter(family)
            elif family.type == "gauge":
                reported.update(self._gauge(family))
            elif family.name not in self._warned:
                self._warned.add(family.name)
                log.warning("metric %s (a %s) is not summed over the processes of a fleet: "
                            "only counters and gauges are", family.name, family.type)
        for name, values in self._set - reported:
            gauge = self._gauges[name]
            (gauge.labels(*values) if values else gauge).set(0)

    def _counter(self, family: Metric) -> None:
        total = f"{family.name}_total"
        for sample in family.samples:
            if sample.name != total:
                continue  # `_created`: each process's own
            names, values = _labels(sample.labels)
            key = (family.name, values)
            grown = sample.value - self._told.get(key, 0.0)
            if grown < 0:  # the plugin's count started again: all of it is new
                grown = sample.value
            if grown:
                _series(self._counters, Counter, family, names, values).inc(grown)
            self._told[key] = sample.value

    def _gauge(self, family: Metric) -> list[Series]:
        found: list[Series] = []
        for sample in family.samples:
            names, values = _labels(sample.labels)
            _series(self._gauges, _summed_gauge, family, names, values).set(sample.value)
            found.append((family.name, values))
        self._set.update(found)
        return found


def _series(made: dict[str, M], make: Callable[..., M], family: Metric,
            names: tuple[str, ...], values: tuple[str, ...]) -> M:
    """The series `values` of the shared metric mirroring `family` (made by `make` with the
    family's name, help and label `names` the first time, kept in `made`)."""
    metric = made.get(family.name)
    if metric is None:
        metric = made[family.name] = make(family.name, family.documentation, names,
                                          registry=None)
    return metric.labels(*values) if names else metric


def _summed_gauge(name: str, documentation: str, names: tuple[str, ...],
                  registry: None = None) -> Gauge:
    """A gauge summed over the live processes of the fleet."""
    return Gauge(name, documentation, names, registry=registry, multiprocess_mode="livesum")


def _labels(labels: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A sample's label names and values, in the names' order."""
    names = tuple(sorted(labels))
    return names, tuple(labels[n] for n in names)
