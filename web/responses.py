"""The JSON response every route answers with: Starlette's, writing lone surrogates as U+FFFD.

A lone UTF-16 surrogate cannot be written as UTF-8. Every boundary refuses such text now, but a
database made by an older version may hold some; a reader must still answer, not fail."""
from __future__ import annotations

import json
from typing import Any

from starlette import responses

from baseshift.core.json_text import replace_surrogates


class JSONResponse(responses.JSONResponse):
    """`starlette.responses.JSONResponse`, but text that is not Unicode is shown as U+FFFD."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # only then pay for the replacement
            return replace_surrogates(text).encode("utf-8")
