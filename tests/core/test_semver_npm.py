"""Ranges and versions mean what they mean to npm: a differential test against npm's own
`semver` package, run by node.

tests/run installs the package (pinned there) with `npm install --prefix
~/.cache/baseshift/npm semver@X`; BASESHIFT_NPM names another prefix folder. Without it the
tests skip, except under CI=true, where they fail: a green CI must have compared.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseshift.core.semver import Range, Version, VersionError
from baseshift.core.semver_syntax import MAX_LENGTH

ORACLE = Path(__file__).with_name("npm_semver.js")


def _package() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    prefix = Path(os.environ.get("BASESHIFT_NPM") or cache / "baseshift" / "npm")
    return prefix / "node_modules" / "semver"


class Npm:
    """One node process for the whole module, asked one JSON line at a time."""

    def __init__(self, node: str, package: Path) -> None:
        self._proc = subprocess.Popen([node, str(ORACLE), str(package)], text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, **question: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(question) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        assert line, f"node exited with {self._proc.wait()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.wait()
        self._proc.stdout.close()


@pytest.fixture(scope="module")
def npm() -> Iterator[Npm]:
    package, node = _package(), shutil.which("node")
    if node is None or not (package / "package.json").is_file():
        missing = "node is not on PATH" if node is None else f"{package} is missing"
        # node and npm are on every machine this project runs on: never a skip
        pytest.fail(f"{missing}: run tests/run, which installs npm's semver package there "
                    f"(or set BASESHIFT_NPM to a folder holding node_modules/semver)")
    oracle = Npm(node, package)
    yield oracle
    oracle.close()


# ------------------------------------------------------------------ what hypothesis writes

_NUMBERS = st.sampled_from([0, 1, 2, 3, 10, 9007199254740990, 9007199254740991])
"""Small numbers, the largest a range may hold and the largest a version may hold."""
_TOO_LARGE = "9007199254740991"
_WILD = st.sampled_from(["x", "X", "*"])
_IDS = st.lists(st.sampled_from(["alpha", "beta", "rc", "pre", "0", "1", "2", "10", "x-1"]),
                min_size=1, max_size=3).map(".".join)
_PRE = st.one_of(st.just(""), _IDS.map("-{}".format))
_BUILD = st.sampled_from(["", "", "+b5", "+build.1"])


@st.composite
def partials(draw: st.DrawFn) -> str:
    """A partial version as npm's grammar has it: wildcards only at the end, a prerelease
    or build only after three numbers, maybe a leading v."""
    numbers = [str(draw(_NUMBERS)) for _ in range(draw(st.integers(0, 3)))]
    wild = [draw(_WILD) for _ in range(draw(st.integers(0 if numbers else 1, 3 - len(numbers))))]
    qualifier = draw(_PRE) + draw(_BUILD) if len(numbers) == 3 else ""
    v = draw(st.sampled_from(["", "v"])) if numbers else ""
    return v + ".".join(numbers + wild) + qualifier


_OPS = st.sampled_from(["", "=", "<", "<=", ">", ">=", "~", "~>", "^"])
comparators = st.builds("{}{}{}".format, _OPS, st.sampled_from(["", " "]), partials())
hyphens = st.builds("{} - {}".format, partials(), partials())
alternatives = st.one_of(hyphens, st.lists(comparators, min_size=1, max_size=3).map(" ".join))
ranges = st.lists(alternatives, min_size=1, max_size=3).map(" || ".join)
versions = st.builds("{}.{}.{}{}".format, _NUMBERS, _NUMBERS, _NUMBERS, _PRE)
# Text near the grammar, for what must be refused: every character a range can hold.
noise = st.one_of(ranges, st.text("0123456789.xX*-+ |<>=~^v,a", max_size=24))


def _agree(npm: Npm, text: str, range_: Range, pool: list[str]) -> None:
    answer = npm.ask(range=text.replace(",", " "), versions=pool)
    assert answer["valid"], f"we accept {text!r}, npm refuses it"
    ours = [range_.matches(Version.parse(v)) for v in pool]
    assert ours == answer["matches"], f"{text!r} over {pool}"
    best = range_.best(Version.parse(v) for v in pool)
    assert (str(best) if best else None) == (
        str(Version.parse(answer["best"])) if answer["best"] else None)


@settings(max_examples=400, deadline=None)  # each example is a round trip to node
@given(ranges, st.lists(versions, min_size=1, max_size=8))
def test_every_range_of_npms_grammar_means_what_it_means_to_npm(
        npm: Npm, text: str, pool: list[str]) -> None:
    refused = "longer" if len(text) > MAX_LENGTH else "largest" if _TOO_LARGE in text else ""
    if refused:  # on purpose, where npm accepts: see core/semver_syntax.py
        with pytest.raises(VersionError, match=refused):
            Range.parse(text)
        return
    _agree(npm, text, Range.parse(text), pool)


@settings(max_examples=400, deadline=None)  # each example is a round trip to node
@given(noise, st.lists(versions, min_size=1, max_size=4))
def test_what_we_accept_npm_accepts_and_reads_alike(npm: Npm, text: str,
                                                    pool: list[str]) -> None:
    try:
        range_ = Range.parse(text)
    except VersionError as exc:  # refused with a reason, or with npm's own limits
        assert exc.hint or "largest" in exc.message or "longer" in exc.message
        return
    _agree(npm, text, range_, pool)


@settings(deadline=None)
@given(st.lists(versions, max_size=8))
def test_versions_sort_as_npm_sorts_them(npm: Npm, pool: list[str]) -> None:
    ours = [str(v) for v in sorted(Version.parse(v) for v in pool)]
    assert ours == npm.ask(sort=ours[::-1])["sorted"]


@settings(deadline=None)
@given(st.one_of(versions, st.text("0123456789.-+av", max_size=16)))
def test_a_version_we_accept_is_the_same_version_to_npm(npm: Npm, text: str) -> None:
    try:
        ours = Version.parse(text)
    except VersionError as exc:
        assert "expected" in str(exc) or "largest" in str(exc)
        return
    assert npm.ask(valid=text)["version"] == str(ours)
