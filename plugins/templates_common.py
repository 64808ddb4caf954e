"""What the template store's faces share (REST in `api_templates_routes`, GraphQL in
`graphql_api`, the `baseshift templates` command): finding the store, and diffing versions."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baseshift.core.errors import NotFound
from baseshift.core.schemacompat import breaking_changes, json_diff

if TYPE_CHECKING:
    from baseshift.core.app import BaseShift
    from baseshift.core.templatestore import TemplateDocument, TemplateStore


def template_store(bs: BaseShift) -> TemplateStore:
    """The application's template store; NotFound when no backend is configured."""
    if bs.templates is None:
        raise NotFound("this server has no job template store",
                       hint="set BASESHIFT_TEMPLATES to sqlite or memory")
    return bs.templates


def diff_json(old: TemplateDocument, new: TemplateDocument) -> dict[str, Any]:
    """What changed from `old` to `new` and the reasons callers of `old` would break."""
    reasons = breaking_changes(old.input_schema, old.output_schema, new.input_schema,
                               new.output_schema)
    before, after = old.to_json(), new.to_json()
    for doc in (before, after):
        for key in ("version", "created_at", "templateId", "name"):
            doc.pop(key)
    return {"name": new.name, "from": old.version, "to": new.version,
            "compatible": not reasons, "reasons": reasons, "changes": json_diff(before, after)}
