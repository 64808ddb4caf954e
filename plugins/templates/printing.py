"""How `baseshift templates` prints for people, on a local store or a server's: a table of
versions, one version, the differences between two."""
from __future__ import annotations

import json
from typing import Any

from baseshift.core.templatestore import TemplateDocument


def list_text(docs: list[TemplateDocument]) -> str:
    if not docs:
        return "no templates published"
    head = ("NAME", "VERSION", "STEPS", "DESCRIPTION")
    rows = [(d.name, d.version, ",".join(d.types), d.description or "") for d in docs]
    widths = [max(len(r[i]) for r in [head[:3], *rows]) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, [*widths, 0], strict=True))
                     .rstrip() for row in [head, *rows])


def show_text(doc: TemplateDocument) -> str:
    """A template version for people: header, steps, schemas."""
    lines = [doc.ref + (f"  {doc.description}" if doc.description else ""), "steps:"]
    lines += [f"  {s.name} ({s.type}) {json.dumps(s.config)}" for s in doc.steps]
    lines += ["inputSchema:", _indent(doc.input_schema), "outputSchema:",
              _indent(doc.output_schema)]
    return "\n".join(lines)


def _indent(value: object) -> str:
    return "\n".join("  " + line for line in json.dumps(value, indent=2).splitlines())


def diff_text(diff: dict[str, Any]) -> str:
    """The verdict, each change, each reason callers would break (`diff_json`'s shape)."""
    verdict = "compatible" if diff["compatible"] else "BREAKS callers"
    lines = [f"{diff['name']} {diff['from']} -> {diff['to']}: {verdict}"]
    lines += [f"  {c['change']:<8} {c['path']}: {json.dumps(c.get('from'))} -> "
              f"{json.dumps(c.get('to'))}" for c in diff["changes"]]
    lines += [f"  breaking: {reason}" for reason in diff["reasons"]]
    return "\n".join(lines)
