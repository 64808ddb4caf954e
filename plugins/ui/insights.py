"""The Insights page: the figures of `GET /api/v1/analytics/insights` drawn as SVG on the
server (no chart script: the Content-Security-Policy allows no inline code, and none is
needed). Each chart is a `<figure>` with a title, an aria-label, a `<title>` on every mark,
its numbers in `data-*` attributes, and a table of the same numbers beside it.

This module only lays the charts out (coordinates in SVG user units); the template draws
them, so names and labels are escaped by Jinja's autoescape like any other text.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from baseshift.core.access import ANALYTICS_READ
from baseshift.plugins.api.analytics_routes import insights_of
from baseshift.web.access import listing, requires
from baseshift.web.render import format_duration, render

WIDTH = 720
LEFT = 56      # room for the value axis labels
LABELS = 200   # room for workflow names left of horizontal bars
PLOT_H = 180
ROW = 26


@dataclass(frozen=True, slots=True)
class Mark:
    """One rectangle or point of a chart, with the value it stands for and its label."""

    x: float
    y: float
    w: float
    h: float
    value: float
    label: str
    kind: str = ""


@dataclass(slots=True)
class Chart:
    width: float
    height: float
    marks: list[Mark] = field(default_factory=list)
    texts: list[tuple[float, float, str, str]] = field(default_factory=list)
    """(x, y, text, CSS class) of axis and row labels."""
    line: str = ""
    """A polyline's points, for time series."""
    top: float = 0.0
    """The value at the top of the plot (the scale: PLOT_H units stand for `top`)."""


def _r(v: float) -> float:
    return round(v, 2)


def _hour_label(iso: str) -> str:
    return iso[11:16]


def runs_chart(figures: dict[str, Any]) -> Chart:
    """Stacked bars: per hour, a segment per state, heights proportional to counts."""
    hours = figures["runs_per_hour"]
    chart = Chart(WIDTH, PLOT_H + 40)
    top = max((h["total"] for h in hours), default=0)
    chart.top = top
    slot = (WIDTH - LEFT) / max(len(hours), 1)
    scale = PLOT_H / top if top else 0.0
    every = max(1, len(hours) // 12)
    for i, hour in enumerate(hours):
        x, bottom = LEFT + i * slot, PLOT_H + 10
        for state in figures["states"]:
            n = hour["counts"].get(state, 0)
            if n:
                h = n * scale
                bottom -= h
                chart.marks.append(Mark(_r(x + slot * 0.1), _r(bottom), _r(slot * 0.8), _r(h),
                                        n, f"{hour['hour'][:16]}Z {state}: {n}", state))
        if i % every == 0:
            chart.texts.append((_r(x + slot / 2), PLOT_H + 26, _hour_label(hour["hour"]),
                                "tick"))
    chart.texts += [(LEFT - 6, 16, str(top), "axis"), (LEFT - 6, PLOT_H + 10, "0", "axis")]
    return chart


def success_chart(figures: dict[str, Any]) -> Chart:
    """Horizontal bars: a workflow's success rate, the full width standing for 100 %."""
    rows = figures["workflows"]
    plot_w = WIDTH - LABELS - 60
    chart = Chart(WIDTH, ROW * len(rows) + 10, top=1.0)
    for i, w in enumerate(rows):
        y = 5 + i * ROW
        chart.texts.append((LABELS - 8, y + ROW / 2 + 4, w["workflow"], "name"))
        rate = w["success_rate"]
        if rate is None:
            chart.texts.append((LABELS, y + ROW / 2 + 4, "no completed or failed run", "note"))
            continue
        label = f"{w['workflow']}: {rate:.0%} of {w['completed'] + w['failed']} runs"
        chart.marks.append(Mark(LABELS, y + 3, _r(rate * plot_w), ROW - 6, rate, label, "rate"))
        chart.texts.append((_r(LABELS + rate * plot_w + 6), y + ROW / 2 + 4, f"{rate:.0%}",
                            "value"))
    return chart


def durations_chart(figures: dict[str, Any]) -> Chart:
    """Paired horizontal bars per workflow: p50 and p95 run durations on one scale."""
    rows = [w for w in figures["workflows"] if w["p95_duration"] is not None]
    plot_w = WIDTH - LABELS - 90
    top = max((w["p95_duration"] for w in rows), default=0.0)
    chart = Chart(WIDTH, ROW * len(rows) + 10, top=top)
    scale = plot_w / top if top else 0.0
    for i, w in enumerate(rows):
        y = 5 + i * ROW
        chart.texts.append((LABELS - 8, y + ROW / 2 + 4, w["workflow"], "name"))
        for kind, offset in (("p50", 3), ("p95", ROW / 2)):
            d = w[f"{kind}_duration"]
            chart.marks.append(Mark(LABELS, y + offset, _r(d * scale), ROW / 2 - 3, d,
                                    f"{w['workflow']} {kind}: {format_duration(d)}", kind))
        chart.texts.append((_r(LABELS + w["p95_duration"] * scale + 6), y + ROW / 2 + 4,
                            format_duration(w["p95_duration"]), "value"))
    return chart


def series_chart(figures: dict[str, Any], key: str, unit: str) -> Chart:
    """A line over the samples' `key` in the figures' time range (points drawn too)."""
    start = _epoch(figures["since"])
    end = max(_epoch(figures["now"]), start + 1)
    points = [(p["at"], p[key]) for p in figures["samples"]["points"] if p[key] is not None]
    # at least 1 (attempt, second) at the top: a flat 0 line sits on the axis, not mid-air
    top = max(max((v for _, v in points), default=0), 1)
    chart = Chart(WIDTH, PLOT_H + 40, top=top)
    scale = PLOT_H / top if top else 0.0
    coords = []
    for at, v in points:
        x = _r(LEFT + (_epoch(at) - start) / (end - start) * (WIDTH - LEFT - 8))
        y = _r(PLOT_H + 10 - v * scale)
        coords.append(f"{x},{y}")
        chart.marks.append(Mark(x, y, 0, 0, v, f"{at[:19]}Z: {_amount(v, unit)}", key))
    chart.line = " ".join(coords)
    chart.texts += [(LEFT - 6, 16, _amount(top, unit), "axis"),
                    (LEFT - 6, PLOT_H + 10, "0", "axis"),
                    (LEFT, PLOT_H + 26, figures["since"][11:16], "tick-start"),
                    (WIDTH - 8, PLOT_H + 26, figures["now"][11:16], "tick-end")]
    return chart


def _amount(v: float, unit: str) -> str:
    return format_duration(v) if unit == "s" else f"{v:g}"


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@requires(ANALYTICS_READ, listing(ANALYTICS_READ))
async def insights_page(request: Request) -> Response:
    figures = await insights_of(request)
    return render(request, "insights.html", {
        "section": "insights", "figures": figures, "left": LEFT,
        "plot_h": PLOT_H, "runs": runs_chart(figures),
        "success": success_chart(figures), "durations": durations_chart(figures),
        "queue": series_chart(figures, "queue_depth", "n"),
        "lag": series_chart(figures, "scheduler_lag", "s")})
