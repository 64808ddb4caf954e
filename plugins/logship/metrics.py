"""The shippers' counters as Prometheus metrics, in the metrics plugin's registry of the
application (when that plugin is on). Labels: the service (one per plugin) and the outcome
(shipped, dropped, failed) — a fixed, small set."""
from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from baseshift.core.appface import App
from baseshift.plugins.metrics.collector import METRICS

from .shipping import Shipping


class ShippingCollector(Collector):
    """Reads the counters of `shipping` when Prometheus scrapes."""

    def __init__(self, shipping: Shipping) -> None:
        self.shipping = shipping

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s = self.shipping
        lines = CounterMetricFamily("baseshift_log_lines_shipped",
                                    "Log lines handed to a log service, by outcome: shipped, "
                                    "dropped (the buffer was full, or shutdown gave up), "
                                    "failed (refused by the service)",
                                    labels=["service", "outcome"])
        for outcome, count in (("shipped", s.shipped), ("dropped", s.dropped),
                               ("failed", s.failed)):
            lines.add_metric([s.service, outcome], count)
        yield lines
        yield _buffered(s)


def _buffered(s: Shipping) -> Metric:
    gauge = GaugeMetricFamily("baseshift_log_lines_buffered",
                              "Log lines waiting to be shipped to a log service",
                              labels=["service"])
    gauge.add_metric([s.service], s.batcher.pending())
    return gauge


def expose(bs: App, shipping: Shipping) -> Collector | None:
    """Register the counters with the application's metrics; the collector, to unregister
    at shutdown, or None when the metrics plugin is off."""
    metrics = bs.stash.get(METRICS)
    if metrics is None:
        return None
    collector = ShippingCollector(shipping)
    metrics.registry.register(collector)
    return collector


def conceal(bs: App, collector: Collector) -> None:
    metrics = bs.stash.get(METRICS)
    if metrics is not None:
        metrics.registry.unregister(collector)
