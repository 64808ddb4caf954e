"""Template documents as the checker reads them, converted once per published version: the
template stores' shared cache (a published version never changes)."""
from __future__ import annotations

from collections.abc import Iterable

from baseshift.core.app.templatespec import to_spec
from baseshift.core.plan import TemplateSpec
from baseshift.core.templatestore import TemplateDocument


class SpecCache:
    """Published versions are immutable, so each is converted to a `TemplateSpec` once."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str, float | None], TemplateSpec] = {}

    def specs(self, docs: Iterable[TemplateDocument]) -> list[TemplateSpec]:
        from baseshift.dsl import parse_expression

        out, kept = [], {}
        for doc in docs:
            key = (doc.name, doc.version, doc.created_at)
            spec = self._specs.get(key) or to_spec(doc, parse_expression)
            kept[key] = spec
            out.append(spec)
        self._specs = kept  # forget deleted versions
        return out
