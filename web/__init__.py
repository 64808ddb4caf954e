"""The helpers a plugin's web routes use: `from baseshift.web import operation, read_json`.

The second public module beside `baseshift.core`, kept apart because these need Starlette
(which the core never imports) and a plugin adding routes uses Starlette itself. Names are
imported on first use, like the core's; docs/plugins.md ("The public API") lists them."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.exports import lazy_exports

if TYPE_CHECKING:
    from .limits import FlagParam, IntParam, Text, TextParam, TimeParam
    from .openapi import operation
    from .problems import HTML_ERRORS_KEY
    from .render import TEMPLATE_DIRS_KEY, add_templates, is_htmx, render, render_text
    from .requests import baseshift_of, json_object, only_fields, read_form, read_json
    from .schemas import obj

__all__ = [
    # API endpoints
    "FlagParam", "IntParam", "Text", "TextParam", "TimeParam", "baseshift_of", "json_object",
    "obj", "only_fields", "operation", "read_form", "read_json",
    # web pages
    "HTML_ERRORS_KEY", "TEMPLATE_DIRS_KEY", "add_templates", "is_htmx", "render",
    "render_text",
]

if not TYPE_CHECKING:  # type checkers read the imports above, and reject other names
    __getattr__, __dir__ = lazy_exports(globals(), {
        "limits": ("FlagParam", "IntParam", "Text", "TextParam", "TimeParam"),
        "openapi": ("operation",),
        "problems": ("HTML_ERRORS_KEY",),
        "render": ("TEMPLATE_DIRS_KEY", "add_templates", "is_htmx", "render", "render_text"),
        "requests": ("baseshift_of", "json_object", "only_fields", "read_form", "read_json"),
        "schemas": ("obj",),
    })
