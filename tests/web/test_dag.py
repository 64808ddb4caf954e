"""The DAG layout (layers, crossing reduction, handler lane) and its SVG rendering."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baseshift.core.records import JobRecord
from baseshift.core.states import JobState
from baseshift.web.dag import (
    GAP_X,
    NODE_W,
    JobSummary,
    crossings,
    layout,
    layout_plan,
    render_svg,
    summarise_jobs,
)

SVG = "{http://www.w3.org/2000/svg}"
REPO = Path(__file__).resolve().parents[2]


def test_jobs_are_placed_in_columns_by_dependency_depth() -> None:
    lay = layout([("a", []), ("b", [("a", False)]), ("c", [("b", False)]),
                  ("d", [("a", False), ("c", False)])])
    nodes = {n.name: n for n in lay.jobs}
    assert {k: n.layer for k, n in nodes.items()} == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert [nodes[k].x for k in "abcd"] == [16 + i * (NODE_W + GAP_X) for i in range(4)]


def test_an_edge_that_skips_columns_runs_through_one_virtual_point_per_column() -> None:
    lay = layout([("a", []), ("b", [("a", False)]), ("c", [("b", False)]),
                  ("d", [("a", False), ("c", False)])])
    long_edge = next(e for e in lay.edges if (e.source, e.target) == ("a", "d"))
    virtual = [n for n in lay.nodes if n.virtual]
    assert len(virtual) == 2  # columns 1 and 2
    assert len(long_edge.points) == 2 + 2 * len(virtual)
    assert long_edge.points[0][0] == 16 + NODE_W  # leaves a's right side
    assert long_edge.points[-1][0] == 16 + 3 * (NODE_W + GAP_X)  # enters d's left side


def test_barycenter_ordering_removes_avoidable_crossings() -> None:
    # Declared so that the first column's order crosses every edge of the second.
    graph = [("a", []), ("b", []), ("c", []),
             ("x", [("c", False)]), ("y", [("b", False)]), ("z", [("a", False)])]
    declared = crossings([["a", "b", "c"], ["x", "y", "z"]],
                         {"a": ["z"], "b": ["y"], "c": ["x"]})
    assert declared == 3
    lay = layout(graph)
    columns: dict[int, list[str]] = {}
    for n in sorted(lay.jobs, key=lambda n: n.y):
        columns.setdefault(n.layer, []).append(n.name)
    succ = {"a": ["z"], "b": ["y"], "c": ["x"]}
    assert crossings([columns[0], columns[1]], succ) == 0


def test_handlers_get_their_own_lane_below_the_main_graph() -> None:
    lay = layout([("a", []), ("b", [("a", False)])], [("alert", []), ("log", [("alert", False)])])
    assert lay.lane_y is not None
    main = [n for n in lay.jobs if not n.handler]
    handlers = [n for n in lay.jobs if n.handler]
    assert {n.name for n in handlers} == {"alert", "log"}
    assert max(n.y for n in main) < lay.lane_y < min(n.y for n in handlers)
    assert {n.layer for n in handlers} == {0, 1}


def test_a_long_chain_lays_out_without_recursion() -> None:
    chain = [("j0", [])] + [(f"j{i}", [(f"j{i - 1}", False)]) for i in range(1, 3000)]
    lay = layout(chain)
    assert max(n.layer for n in lay.jobs) == 2999


def test_an_empty_plan_has_an_empty_drawing() -> None:
    lay = layout([])
    assert lay.jobs == () and lay.edges == ()
    root = ET.fromstring(render_svg(lay, title="nothing"))
    assert root.find(f"{SVG}desc").text == "0 jobs. ."  # type: ignore[union-attr]


def test_svg_has_an_accessible_title_a_group_per_job_and_a_path_per_edge() -> None:
    lay = layout([("fetch", []), ("parse", [("fetch", False)]), ("notify", [("parse", True)])])
    svg = render_svg(lay, title="Jobs of run r1", prefix="dag",
                     summaries={"fetch": JobSummary("SUCCEEDED"),
                                "parse": JobSummary("RUNNING", "2/5 items done")})
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "dag-title dag-desc"
    assert root.find(f"{SVG}title").text == "Jobs of run r1"  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc").text  # type: ignore[union-attr]
    assert "parse (needs fetch): running" in desc  # type: ignore[operator]
    groups = {g.get("id"): g for g in root.iter(f"{SVG}g")}
    assert set(groups) == {"dag-node-fetch", "dag-node-parse", "dag-node-notify"}
    assert groups["dag-node-fetch"].get("class") == "dag-node state-succeeded"
    assert groups["dag-node-notify"].get("class") == "dag-node"
    parse = groups["dag-node-parse"]
    assert parse.find(f"{SVG}title").text == "parse — RUNNING (2/5 items done)"  # type: ignore[union-attr]
    labels = [t.text for t in parse.iter(f"{SVG}text")]
    assert labels == ["parse", "running · 2/5 items done"]
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class", "").startswith("dag-edge")]
    assert [(p.get("data-from"), p.get("data-to"), p.get("class")) for p in paths] == [
        ("fetch", "parse", "dag-edge"), ("parse", "notify", "dag-edge optional")]
    assert all(p.get("marker-end") == "url(#dag-arrow)" for p in paths)


def test_svg_escapes_titles_and_ids_carry_the_prefix() -> None:
    lay = layout([("a", [])])
    svg = render_svg(lay, title='<script>alert("x")</script>', prefix="w1",
                     details={"a": "uses <shell>"})
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    assert root.get("id") == "w1"
    assert root.find(f"{SVG}g").get("id") == "w1-node-a"  # type: ignore[union-attr]
    assert [t.text for t in root.iter(f"{SVG}text")] == ["a", "uses <shell>"]


def test_long_names_are_clipped_in_the_box_but_whole_in_the_title() -> None:
    name = "a_really_quite_long_job_name_indeed"
    root = ET.fromstring(render_svg(layout([(name, [])]), title="t"))
    group = root.find(f"{SVG}g")
    assert group.find(f"{SVG}title").text == name  # type: ignore[union-attr]
    label = group.find(f"{SVG}text").text  # type: ignore[union-attr]
    assert label is not None and label.endswith("…") and len(label) == 20


def test_fan_out_items_are_summarised_on_their_job() -> None:
    records = {"square": JobRecord("r", "square", "square", state=JobState.RUNNING),
               "total": JobRecord("r", "total", "total")}
    states = [JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.FAILED, JobState.RUNNING]
    for i, state in enumerate(states):
        records[f"square[{i}]"] = JobRecord("r", f"square[{i}]", "square", index=i, state=state)
    summary = summarise_jobs(records)
    assert summary["square"] == JobSummary("RUNNING", "2/4 items done, 1 failed")
    assert summary["total"] == JobSummary("PENDING", "")


async def test_the_example_workflows_lay_out_with_their_handlers(
        make_baseshift: Callable[..., Any]) -> None:
    async with make_baseshift() as bs:
        plan = bs.load_workflow(REPO / "workflows" / "failure.bsw")
    lay = layout_plan(plan)
    names = {n.name: n for n in lay.jobs}
    assert [names[k].layer for k in ("export", "upload", "cleanup")] == [0, 1, 2]
    assert names["alert"].handler and names["log_failure"].handler
    ET.fromstring(render_svg(lay, title="nightly_export"))


def test_linked_nodes_are_keyboard_reachable_links_in_a_group() -> None:
    lay = layout([("fetch", []), ("parse", [("fetch", False)])])
    svg = render_svg(lay, title="t", summaries={"fetch": JobSummary("FAILED")},
                     links={"fetch": "#job-fetch", "parse": '#job-"parse"'})
    root = ET.fromstring(svg)
    assert root.get("role") == "group", "an img hides its links from assistive technology"
    links = {a.get("href"): a for a in root.iter(f"{SVG}a")}
    assert set(links) == {"#job-fetch", '#job-"parse"'}
    fetch = links["#job-fetch"]
    assert fetch.get("aria-label") == "fetch — FAILED"
    assert fetch.find(f"{SVG}g").get("id") == "dag-node-fetch"  # type: ignore[union-attr]
    unlinked = ET.fromstring(render_svg(lay, title="t"))
    assert unlinked.get("role") == "img" and not list(unlinked.iter(f"{SVG}a"))
