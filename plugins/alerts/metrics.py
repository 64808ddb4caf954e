"""`baseshift_alerts_firing{rule}`: the alerts firing per rule after the last evaluation
in this process (the one leading "alerts"; 0 elsewhere), in the metrics plugin's registry
when that plugin is active. Rule names are few and chosen by administrators, so the label
stays bounded."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from baseshift.core.stash import StashKey
from baseshift.plugins.metrics.collector import METRICS

from .evaluator import Evaluator

if TYPE_CHECKING:
    from baseshift.core.appface import App


class FiringAlerts(Collector):
    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily("baseshift_alerts_firing", "Alerts firing, by rule",
                                   labels=["rule"])
        for rule, count in sorted(self.evaluator.firing.items()):
            firing.add_metric([rule], count)
        yield firing


EXPOSED: StashKey[FiringAlerts] = StashKey("alerts_metrics")


def expose(bs: App, evaluator: Evaluator) -> None:
    """Add the gauge to the application's metrics (once), if the metrics plugin made them."""
    metrics = bs.stash.get(METRICS)
    if metrics is not None and EXPOSED not in bs.stash:
        bs.stash[EXPOSED] = FiringAlerts(evaluator)
        metrics.registry.register(bs.stash[EXPOSED])
