"""Resolved template versions, remembered in the cache: `GET /api/v1/templates/NAME/RANGE`
answered again without reading every version of NAME from the store.

The key names the template, the version or range asked for and a digest of the templates
defined in the workflows folder's files (which take precedence over the store's), so a
changed file is another key. Publishing or deleting a version of NAME through this server
drops NAME's entries at once; a change made elsewhere (`baseshift templates publish`
against the database directly) is seen when the entry expires, after `TTL` seconds.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from baseshift.core.cache import Cache, JSONValue
from baseshift.core.compiled import FileTemplate
from baseshift.core.errors import StoreError

log = logging.getLogger("baseshift.templates")

PREFIX = "template:"
"""Every key of a resolved template starts with this, then `NAME@`."""

TTL = 60.0
"""Seconds a resolution is kept: the longest a change made by another program goes unseen."""


def resolved_key(name: str, wanted: str, files: Sequence[FileTemplate]) -> str:
    """The key of resolving `name@wanted` while the folder defines `files`."""
    digest = hashlib.sha256()
    for t in sorted(files, key=lambda f: (str(f.path), f.document.ref)):
        digest.update(f"{t.path}\0{t.document!r}\0".encode())
    return f"{PREFIX}{name}@{wanted}#{digest.hexdigest()[:32]}"


async def lookup(cache: Cache, key: str) -> dict[str, JSONValue | None] | None:
    """The kept answer, or None (not kept, or the cache fails: it is never needed)."""
    try:
        kept = await cache.get(key)
    except StoreError as exc:
        log.warning("resolving templates without the cache: %s", exc.message)
        return None
    return kept if isinstance(kept, dict) else None


async def keep(cache: Cache, key: str, answer: dict[str, JSONValue | None]) -> None:
    try:
        await cache.set(key, answer, TTL)
    except StoreError as exc:
        log.warning("could not keep a resolved template in the cache: %s", exc.message)


async def forget(cache: Cache, name: str) -> int:
    """Drop every kept resolution of `name` (a version was published or deleted)."""
    removed = 0
    for key in await cache.keys(f"{PREFIX}{name}@"):
        removed += await cache.delete(key)
    return removed
