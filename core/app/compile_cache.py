"""Checked workflow texts, remembered in the cache: checking the same text again against the
same templates, executors, plugins and language build is a cache hit.

What is kept is what `POST /api/v1/workflows/validate` answers (whether the text checks, its
workflow's name and every diagnostic): a `Plan` has no JSON form to rebuild it from, so
compiling for a run always compiles. The key is a digest of everything the answer depends
on, so a changed text, a changed template (the folder's or the store's), another set of
executors or plugins, or another build of the language can never be served a stale answer:
it looks under another key. Publishing or deleting a template also drops every kept answer
(`forget_compiled`), which frees their room at once rather than when they expire.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any, cast

from ..cache import Cache, JSONValue
from ..compiled import Compiled
from ..plan import TemplateSpec
from ..version import __version__

PREFIX = "compile:"
"""Every key of a checked text starts with this (the admin API invalidates by prefix)."""

TTL = 24 * 3600.0
"""Seconds an answer is kept: it is cheap to rebuild, and memory is not."""


@functools.cache
def build_digest() -> str:
    """The language build: Base Shift's version and a digest of the grammar and the checker's
    code, so that an upgraded (or locally edited) language never reads an older answer."""
    digest = hashlib.sha256(__version__.encode())
    for package, suffix in (("baseshift.grammar", ".lark"), ("baseshift.dsl", ".py")):
        for item in sorted(files(package).iterdir(), key=lambda p: p.name):
            if item.name.endswith(suffix):
                digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()


def environment_digest(templates: Sequence[TemplateSpec], executors: Mapping[str, Any],
                       plugins: Sequence[str], admits_runs: bool) -> str:
    """A digest of what a check depends on besides the text: every template it may use
    (all of each one's fields), the executors' option schemas and the registered plugins
    (whose `validate_plan` diagnostics join the answer)."""
    digest = hashlib.sha256(build_digest().encode())
    for spec in sorted(templates, key=lambda t: (t.name, t.version)):
        digest.update(repr(spec).encode() + b"\0")
    digest.update(json.dumps(executors, sort_keys=True, default=repr).encode())
    digest.update(json.dumps([sorted(plugins), admits_runs]).encode())
    return digest.hexdigest()


def compiled_key(environment: str, source: str, filename: str) -> str:
    """The cache key of checking `source` as `filename` in `environment`."""
    digest = hashlib.sha256(f"{environment}\0{filename}\0".encode() + source.encode())
    return PREFIX + digest.hexdigest()


def answer(compiled: Compiled) -> dict[str, JSONValue | None]:
    """What the validate API answers for `compiled`, as kept in the cache."""
    diagnostics: list[JSONValue | None] = [cast(JSONValue, d.to_json())
                                           for d in compiled.diagnostics]
    return {"valid": compiled.ok, "workflow": compiled.plan.name if compiled.plan else None,
            "diagnostics": diagnostics}


async def forget_compiled(cache: Cache) -> int:
    """Drop every kept answer (a template was published or deleted); how many."""
    removed = 0
    for key in await cache.keys(PREFIX):
        removed += await cache.delete(key)
    return removed
