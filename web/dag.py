"""A plan's job graph as inline SVG: a layered (Sugiyama-style) layout, drawn on the server.

Jobs are placed in columns by dependency depth; edges that skip columns pass through
virtual points so they can be ordered too; the order inside each column is improved by
barycenter sweeps, keeping the order with the fewest crossings. `on failure` handlers get a
lane of their own under the main graph. Everything here is a pure function of its inputs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from baseshift.core.plan import JobSpec, Plan
    from baseshift.core.records import JobRecord

NODE_W, NODE_H = 176, 52
GAP_X, GAP_Y = 64, 20
PAD = 16
LANE_GAP = 40
SWEEPS = 8
LABEL_CHARS = 20


@dataclass(frozen=True, slots=True)
class Node:
    """A job's box (or, `virtual`, a point an edge passes through); x, y is its top left."""

    name: str
    layer: int
    order: int
    x: float
    y: float
    handler: bool = False
    virtual: bool = False


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` must finish before `target`; `points` run from the source's right side to
    the target's left side through any virtual points."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Layout:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: float
    height: float
    lane_y: float | None = None
    """Top of the `on failure` lane, when the plan has handlers."""

    @property
    def jobs(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.virtual)


@dataclass(slots=True)
class JobSummary:
    """What a node shows for one job of a run: its state and a note (fan-out progress)."""

    state: str
    note: str = ""


@dataclass(slots=True)
class _Lane:
    """One lane being laid out: columns of node names and the edges between them."""

    layers: list[list[str]] = field(default_factory=list)
    succ: dict[str, list[str]] = field(default_factory=dict)
    pred: dict[str, list[str]] = field(default_factory=dict)
    chains: list[tuple[str, str, list[str], bool]] = field(default_factory=list)
    virtual: set[str] = field(default_factory=set)


Graph = Sequence[tuple[str, Sequence[tuple[str, bool]]]]
"""Jobs in declaration order, each with its dependencies as (name, optional)."""


def plan_graph(plan: Plan) -> tuple[Graph, Graph]:
    """The main jobs and the handlers of a plan as two graphs."""
    def graph(jobs: Sequence[JobSpec]) -> Graph:
        return [(j.name, [(d.job, d.optional) for d in j.needs]) for j in jobs]
    return graph(plan.jobs), graph(plan.handlers)


def layout_plan(plan: Plan) -> Layout:
    """Lay out a plan's DAG: main jobs left to right, handlers in a lane below."""
    main, handlers = plan_graph(plan)
    return layout(main, handlers)


def layout(main: Graph, handlers: Graph = ()) -> Layout:
    """Place the nodes of two graphs (the second is the handlers' lane) and route edges."""
    top = _place(_order(_build(main)), y0=PAD, handler=False)
    nodes, edges, bottom = top
    lane_y = None
    if handlers:
        lane_y = bottom + LANE_GAP
        h_nodes, h_edges, bottom = _place(_order(_build(handlers)), y0=lane_y + 24, handler=True)
        nodes, edges = nodes + h_nodes, edges + h_edges
    width = max((n.x + NODE_W for n in nodes if not n.virtual), default=0) + PAD
    return Layout(tuple(nodes), tuple(edges), width, bottom + PAD, lane_y)


def _depths(graph: Graph) -> dict[str, int]:
    """Longest path from a root, without recursion (a plan may chain thousands of jobs)."""
    inside = {name for name, _ in graph}
    deps = {name: [d for d, _ in needs if d in inside] for name, needs in graph}
    depth: dict[str, int] = {}
    pending = [name for name, _ in graph]
    while pending:
        rest = []
        for name in pending:
            if all(d in depth for d in deps[name]):
                depth[name] = 1 + max((depth[d] for d in deps[name]), default=-1)
            else:
                rest.append(name)
        if len(rest) == len(pending):  # a cycle: a plan never has one, but do not hang
            depth.update((name, 0) for name in rest)
            break
        pending = rest
    return depth


def _build(graph: Graph) -> _Lane:
    """Columns by depth; every edge longer than one column gets a virtual point per column."""
    depth = _depths(graph)
    lane = _Lane(layers=[[] for _ in range(max(depth.values(), default=-1) + 1)])
    for name, _ in graph:
        lane.layers[depth[name]].append(name)
        lane.succ.setdefault(name, [])
        lane.pred.setdefault(name, [])
    for name, needs in graph:
        for dep, optional in needs:
            if dep in depth:
                lane.chains.append((dep, name, _chain(lane, dep, name, depth), optional))
    return lane


def _chain(lane: _Lane, source: str, target: str, depth: dict[str, int]) -> list[str]:
    points = []
    previous = source
    for layer in range(depth[source] + 1, depth[target]):
        point = f"\0{source}>{target}@{layer}"
        lane.layers[layer].append(point)
        lane.virtual.add(point)
        lane.succ[point], lane.pred[point] = [], []
        _link(lane, previous, point)
        points.append(point)
        previous = point
    _link(lane, previous, target)
    return points


def _link(lane: _Lane, a: str, b: str) -> None:
    lane.succ[a].append(b)
    lane.pred[b].append(a)


def _order(lane: _Lane) -> _Lane:
    """Reorder each column by barycenter sweeps; keep the order with the fewest crossings."""
    best = [list(col) for col in lane.layers]
    best_crossings = crossings(best, lane.succ)
    current = [list(col) for col in lane.layers]
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        indices = range(1, len(current)) if down else range(len(current) - 2, -1, -1)
        for i in indices:
            fixed = current[i - 1] if down else current[i + 1]
            neighbours = lane.pred if down else lane.succ
            current[i] = _by_barycenter(current[i], fixed, neighbours)
        found = crossings(current, lane.succ)
        if found < best_crossings:
            best, best_crossings = [list(col) for col in current], found
    lane.layers = best
    return lane


def _by_barycenter(column: list[str], fixed: list[str],
                   neighbours: Mapping[str, list[str]]) -> list[str]:
    pos = {name: i for i, name in enumerate(fixed)}

    def key(item: tuple[int, str]) -> float:
        index, name = item
        linked = [pos[n] for n in neighbours.get(name, ()) if n in pos]
        return sum(linked) / len(linked) if linked else float(index)

    return [name for _, name in sorted(enumerate(column), key=key)]


def crossings(layers: Sequence[Sequence[str]], succ: Mapping[str, Sequence[str]]) -> int:
    """How many pairs of edges cross between adjacent columns."""
    total = 0
    for left, right in zip(layers, layers[1:], strict=False):
        pos = {name: i for i, name in enumerate(right)}
        edges = sorted((i, pos[t]) for i, s in enumerate(left) for t in succ.get(s, ())
                       if t in pos)
        for a, (s1, t1) in enumerate(edges):
            total += sum(1 for s2, t2 in edges[a + 1:] if s2 > s1 and t2 < t1)
    return total


def _place(lane: _Lane, *, y0: float, handler: bool) -> tuple[list[Node], list[Edge], float]:
    """Coordinates: columns left to right, each column centred on the tallest one."""
    tallest = max((len(col) for col in lane.layers), default=0)
    step = NODE_H + GAP_Y
    nodes: dict[str, Node] = {}
    for layer, column in enumerate(lane.layers):
        offset = (tallest - len(column)) * step / 2
        for order, name in enumerate(column):
            nodes[name] = Node(name, layer, order, PAD + layer * (NODE_W + GAP_X),
                               y0 + offset + order * step, handler, name in lane.virtual)
    edges = [Edge(src, dst, _route(nodes[src], [nodes[p] for p in via], nodes[dst]), optional)
             for src, dst, via, optional in lane.chains]
    bottom = y0 + tallest * step - GAP_Y if tallest else y0
    return list(nodes.values()), edges, bottom


def _route(source: Node, via: list[Node], target: Node) -> tuple[tuple[float, float], ...]:
    mid = NODE_H / 2
    points = [(source.x + NODE_W, source.y + mid)]
    for v in via:  # straight across the column, so the edge never cuts a neighbour's box
        points += [(v.x, v.y + mid), (v.x + NODE_W, v.y + mid)]
    points.append((target.x, target.y + mid))
    return tuple(points)


# --------------------------------------------------------------------------- summaries


def summarise_jobs(jobs: Mapping[str, JobRecord]) -> dict[str, JobSummary]:
    """Each job's state for the graph; a fan-out job notes how many of its items are done."""
    out: dict[str, JobSummary] = {}
    items: dict[str, list[JobRecord]] = {}
    for record in jobs.values():
        if record.index is None:
            out[record.name] = JobSummary(record.state.value)
        else:
            items.setdefault(record.name, []).append(record)
    for name, group in items.items():
        done = sum(r.state.value == "SUCCEEDED" for r in group)
        failed = sum(r.state.value == "FAILED" for r in group)
        note = f"{done}/{len(group)} items done" + (f", {failed} failed" if failed else "")
        summary = out.setdefault(name, JobSummary("RUNNING"))
        summary.note = note
    return out


# --------------------------------------------------------------------------- SVG

def node_id(prefix: str, job: str) -> str:
    """The element id of a job's node: `dag-node-greet`."""
    return f"{prefix}-node-{job}"


def render_svg(layout: Layout, *, title: str, summaries: Mapping[str, JobSummary] | None = None,
               details: Mapping[str, str] | None = None, prefix: str = "dag",
               links: Mapping[str, str] | None = None) -> Markup:
    """Inline SVG of a layout. `summaries` colour nodes by job state (a run's graph);
    `details` is the second line of a node without a state (a workflow's graph: `uses`);
    `links` makes a node a link (job name -> href), so a click or Enter opens what it names.

    With links the drawing is a `group`, not an `img`: an image's children are hidden from
    assistive technology, and the links must be reachable by keyboard and screen reader.
    The drawing has no style of its own (the Content-Security-Policy refuses inline
    styles): its classes are styled in static/baseshift.css."""
    summaries = summaries or {}
    details = details or {}
    links = links or {}
    jobs = layout.jobs
    body = [_edge_svg(e) for e in layout.edges]
    body += [_linked(_node_svg(n, summaries.get(n.name), details.get(n.name, ""), prefix),
                     links.get(n.name), _tip(n.name, summaries.get(n.name))) for n in jobs]
    if layout.lane_y is not None:
        body.insert(0, f'<text class="dag-lane" x="{PAD}" y="{layout.lane_y + 14:g}">'
                       "on failure</text>")
    desc = _description(layout, summaries)
    role = "group" if links else "img"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" id="{escape(prefix)}" '
            f'role="{role}" width="{layout.width:g}" height="{layout.height:g}" '
            f'viewBox="0 0 {layout.width:g} {layout.height:g}" '
            f'aria-labelledby="{escape(prefix)}-title {escape(prefix)}-desc">'
            f'<title id="{escape(prefix)}-title">{escape(title)}</title>'
            f'<desc id="{escape(prefix)}-desc">{escape(desc)}</desc>'
            f'{_marker(prefix)}')
    return Markup(head + "".join(body).replace("#ARROW#", f"#{escape(prefix)}-arrow") + "</svg>")


def _marker(prefix: str) -> str:
    return (f'<defs><marker id="{escape(prefix)}-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
            'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            '<path d="M0,0 L10,5 L0,10 z" fill="#6c757d"/></marker></defs>')


def _edge_svg(edge: Edge) -> str:
    (x, y), rest = edge.points[0], edge.points[1:]
    d = [f"M{x:g},{y:g}"]
    for nx, ny in rest:
        if ny == y:
            d.append(f"L{nx:g},{ny:g}")
        else:
            bend = (nx - x) / 2
            d.append(f"C{x + bend:g},{y:g} {nx - bend:g},{ny:g} {nx:g},{ny:g}")
        x, y = nx, ny
    cls = "dag-edge optional" if edge.optional else "dag-edge"
    return (f'<path class="{cls}" data-from="{escape(edge.source)}" '
            f'data-to="{escape(edge.target)}" d="{" ".join(d)}" marker-end="url(#ARROW#)"/>')


def _node_svg(node: Node, summary: JobSummary | None, detail: str, prefix: str) -> str:
    state = summary.state if summary else ""
    classes = "dag-node" + (f" state-{state.lower()}" if state else "")
    classes += " handler" if node.handler else ""
    sub = state.lower() if state else detail
    if summary and summary.note:
        sub = f"{sub} · {summary.note}"
    tip = _tip(node.name, summary)
    return (f'<g id="{escape(node_id(prefix, node.name))}" class="{classes}" '
            f'data-job="{escape(node.name)}" data-state="{escape(state)}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{node.x:g}" y="{node.y:g}" width="{NODE_W}" height="{NODE_H}" rx="8"/>'
            f'<text class="dag-name" x="{node.x + 10:g}" y="{node.y + 21:g}">'
            f"{escape(_clip(node.name))}</text>"
            f'<text class="dag-sub" x="{node.x + 10:g}" y="{node.y + 40:g}">'
            f"{escape(_clip(sub, LABEL_CHARS + 6))}</text></g>")


def _tip(name: str, summary: JobSummary | None) -> str:
    if summary is None:
        return name
    return name + f" — {summary.state}" + (f" ({summary.note})" if summary.note else "")


def _linked(node: str, href: str | None, label: str) -> str:
    if href is None:
        return node
    return f'<a class="dag-link" href="{escape(href)}" aria-label="{escape(label)}">{node}</a>'


def _clip(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _description(layout: Layout, summaries: Mapping[str, JobSummary]) -> str:
    needs: dict[str, list[str]] = {}
    for edge in layout.edges:
        needs.setdefault(edge.target, []).append(edge.source)
    parts = []
    for node in layout.jobs:
        text = node.name
        if node.name in needs:
            text += f" (needs {', '.join(needs[node.name])})"
        if node.name in summaries:
            text += f": {summaries[node.name].state.lower()}"
        parts.append(text + (" [on failure]" if node.handler else ""))
    count = len(parts)
    return f"{count} job{'s' if count != 1 else ''}. " + "; ".join(parts) + "."
