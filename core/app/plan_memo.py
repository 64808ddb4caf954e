"""Compiled workflow files kept in this process from one catalog reload to the next, so that
a reload recompiles only the files that changed.

A `Plan` is a Python object with no JSON form, so it cannot live in the shared cache (which
holds JSON): the memo is a dict in the process, keyed by (environment, path, text digest).
The environment is `check_digest` of every template the folder's files are checked with
besides their own (plugins', the store's, the template files') and where each comes from,
plus the path and text of every workflow file that may define a template: a file that never
spells the keyword `template` defines none, so it cannot change what another file compiles
to. Hence the rule: when any file must be compiled, the files that may define templates are
compiled with it (their templates are what it is checked against), exactly as a whole-folder
compile would; the other files whose key is kept are taken as they are.

Only the last load's results are kept (the memo never grows beyond one folder), and its
hits and misses are shown by `GET /api/v1/cache/stats` (`plans`).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..cache import CacheStats
from ..compiled import Compiled
from ..plan import TemplateSpec

TEMPLATE_WORD = "template"
"""The keyword every template definition starts with (grammar/baseshift.lark)."""

Key = tuple[str, str, str]
Compile = Callable[[list[Path]], list[Compiled]]
Digest = Callable[[Sequence[TemplateSpec]], str]


BACKEND = "process"
"""The memo's `backend` in its stats: this process's memory."""


class PlanMemo:
    """The compiled files of the last load of one folder, by (environment, path, text)."""

    def __init__(self, digest: Digest) -> None:
        self.digest = digest
        """`check_digest`: what a check depends on besides the text (core/app/compile_cache.py)."""
        self._kept: dict[Key, Compiled] = {}
        self.hits = 0
        self.misses = 0

    def stats(self) -> CacheStats:
        """Files taken from the memo (hits), files compiled (misses), files kept now."""
        return CacheStats(BACKEND, hits=self.hits, misses=self.misses, sets=self.misses,
                          entries=len(self._kept))

    def compile(self, paths: Sequence[Path], templates: Sequence[TemplateSpec],
                origins: Mapping[str, str], compile_: Compile) -> list[Compiled]:
        """The results of compiling `paths` together against `templates` (whose origins are
        `origins`), each file from the memo when its key is kept; `compile_` compiles a
        subset of `paths` (in their order) the way the whole folder would be."""
        texts = {p: _text(p) for p in paths}
        definers = [p for p in paths if (t := texts[p]) is not None and TEMPLATE_WORD in t]
        environment = self._environment(templates, origins, definers, texts)
        keys = {p: _key(environment, p, t) for p, t in texts.items() if t is not None}
        missing = [p for p in paths if keys.get(p) not in self._kept]
        todo = [p for p in paths if p in missing or (missing and p in definers)]
        fresh = dict(zip(todo, compile_(todo), strict=True)) if todo else {}
        out = [fresh[p] if p in fresh else self._kept[keys[p]] for p in paths]
        self.hits += len(paths) - len(todo)
        self.misses += len(todo)
        # a file that changed between the read above and the compile is not kept
        self._kept = {keys[p]: c for p, c in zip(paths, out, strict=True)
                      if texts[p] == c.source}
        return out

    def _environment(self, templates: Sequence[TemplateSpec], origins: Mapping[str, str],
                     definers: Sequence[Path], texts: Mapping[Path, str | None]) -> str:
        digest = hashlib.sha256(self.digest(templates).encode())
        for ref, origin in sorted(origins.items()):
            digest.update(f"{ref}\0{origin}\0".encode())
        for path in definers:
            digest.update(f"{path}\0".encode() + _sha(texts[path] or ""))
        return digest.hexdigest()


def _text(path: Path) -> str | None:
    """The file's text as the compiler reads it (None: unreadable, never kept)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


def _sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _key(environment: str, path: Path, text: str) -> Key:
    return environment, str(path), _sha(text).hex()
