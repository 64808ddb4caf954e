"""Build plans in Python for engine tests, without the language front end."""
from __future__ import annotations

from typing import Any

from baseshift.core.expr import Expr, Literal, ObjectExpr
from baseshift.core.plan import Dependency, JobSpec

SAMPLES = "engine_samples"


def call(fn: str, **args: Any) -> ObjectExpr:
    fields: list[tuple[str, Expr]] = [("function", Literal(f"{SAMPLES}:{fn}"))]
    for k, v in args.items():
        fields.append((k, v if not isinstance(v, str | int | float | bool) else Literal(v)))
    return ObjectExpr(tuple(fields))


def job(name: str, fn: str = "record", needs: tuple[str, ...] = (), **kw: Any) -> JobSpec:
    args = kw.pop("args", {"tag": name})
    deps = tuple(Dependency(d.rstrip("?"), d.endswith("?")) for d in needs)
    return JobSpec(name, "python", call(fn, **args), needs=deps, **kw)
