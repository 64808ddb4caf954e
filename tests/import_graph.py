"""The import graph of the shipped code, read from the source: every `import` and `from …
import` in core/, dsl/, plugins/ and web/, wherever it stands (at the top, inside a function,
or under `if TYPE_CHECKING:`: a type-only import still stands for a real dependency)."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("core", "dsl", "plugins", "web")


@dataclass(frozen=True)
class Import:
    """One imported name: `module` is the dotted module it comes from, `name` what is taken
    from it (None for a plain `import module`)."""

    module: str
    name: str | None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["baseshift", *parts])


def shipped_modules() -> dict[str, Path]:
    return {module_name(p): p for top in SHIPPED for p in sorted((REPO / top).rglob("*.py"))}


def imports_of(path: Path) -> Iterator[Import]:
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (Import(a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[:len(package) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            yield from (Import(base, a.name) for a in node.names)


def dependencies(modules: dict[str, Path]) -> dict[str, set[str]]:
    """For each shipped module, the shipped modules it imports (a submodule imported by
    `from package import submodule` counts as that submodule)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for imp in imports_of(path):
            target = f"{imp.module}.{imp.name}" if f"{imp.module}.{imp.name}" in modules \
                else imp.module
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
        graph[name] = found
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found
