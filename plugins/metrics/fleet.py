"""`/metrics` of a fleet of processes on one port (`baseshift serve --processes N`): every
process writes its counters, histograms and gauges to files in one directory (prometheus_client's
multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, made private by the supervisor), and whichever
process answers a scrape sums them all, so the counts do not depend on which one answered.

The mode is chosen when prometheus_client is first imported (the supervisor sets the variable
in each child's environment before it starts). Not exported in this mode: `process_*`
(one process's own figures, which would jump from one scrape to the next). The scheduler lag
is the fleet's: each process keeps the time its oldest ready job became ready in a `livemin`
gauge, turned into a lag when the scrape is answered.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
READY_SINCE = "baseshift_jobs_ready_since_timestamp_seconds"
"""Internal: per process, when its oldest ready job became ready (+Inf: none waits)."""
LAG = "baseshift_scheduler_lag_seconds"
LAG_HELP = "How long the oldest ready job has waited to start"


def fleet_dir() -> str | None:
    """The directory the processes share, when this process counts in multiprocess mode."""
    if values.ValueClass is values.MutexValue:
        return None  # prometheus_client was imported without the variable: one process
    return os.environ.get(DIR_VARIABLE) or None


def lag_family(oldest: float | None, now: float | None = None) -> GaugeMetricFamily:
    """`baseshift_scheduler_lag_seconds` for the oldest ready job's time (None: none)."""
    lag = 0.0
    if oldest is not None and math.isfinite(oldest):
        lag = max(0.0, (time.time() if now is None else now) - oldest)
    return GaugeMetricFamily(LAG, LAG_HELP, value=lag)


class FleetCollector(Collector):
    """Every process's metrics from the shared directory, summed; the internal oldest-ready
    gauge (min over live processes) answered as the scheduler lag."""

    def __init__(self, path: str) -> None:
        self.inner = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        oldest: float | None = None
        for family in self.inner.collect():  # type: ignore[no-untyped-call]
            if family.name != READY_SINCE:
                yield family
                continue
            found = [s.value for s in family.samples]
            oldest = min(found) if found else None
        yield lag_family(oldest)


def fleet_registry(path: str, *local: Collector) -> CollectorRegistry:
    """A registry for one scrape: the fleet's metrics, then `local` collectors, read at
    scrape time by the process that answers (the catalog's and queue's values, the same in
    every process; what other plugins register is in the shared files: mirror.py)."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(path))
    for collector in local:
        registry.register(collector)
    return registry
