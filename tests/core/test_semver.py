"""Versions and ranges as `uses name@range` resolves them: npm's meaning, our messages.

tests/core/test_semver_npm.py compares every range with npm's own answers; these cases
name the forms one by one, so that a failure reads as the form that broke.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseshift.core.semver import Range, Version, VersionError

versions = st.builds(Version, st.integers(0, 20), st.integers(0, 20), st.integers(0, 20))


@pytest.mark.parametrize(("text", "inside", "outside"), [
    ("^1.2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("1.2.3", ["1.2.3"], ["1.2.4"]),
    ("1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
    (">=1.0 <2", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0"]),
    (">=1.0,<2", ["1.5.0"], ["2.1.0"]),
    ("*", ["0.0.0", "9.9.9"], []),
    # A partial bound covers the whole partial: >1.2 is >=1.3.0, <=1.2 is <1.3.0.
    (">1.2", ["1.3.0"], ["1.2.8", "1.2.0"]),
    (">1", ["2.0.0"], ["1.9.9"]),
    ("<=0.7.x", ["0.7.2", "0.7.0"], ["0.8.0"]),
    ("<=7.x", ["7.9.9"], ["8.0.0"]),
    ("<1.2", ["1.1.9"], ["1.2.0"]),
    (">=1.2.x", ["1.2.0"], ["1.1.9"]),
    ("1.0.0 - 2.0.0", ["1.0.0", "2.0.0"], ["0.9.9", "2.0.1"]),
    ("1.2 - 2.3", ["1.2.0", "2.3.9"], ["2.4.0"]),
    ("^1.2 || ^3", ["1.5.0", "3.0.0"], ["2.0.0", "4.0.0"]),
    ("1.x||>=3.1 <3.2", ["1.4.0", "3.1.5"], ["2.0.0", "3.2.0"]),
    (">= 1.0.0 < 2", ["1.0.0"], ["2.0.0"]),
    ("^ 1.2", ["1.9.0"], ["2.0.0"]),
    ("~> 1.2", ["1.2.9"], ["1.3.0"]),
    (">=*", ["0.0.0", "9.9.9"], []),
    ("^x", ["0.0.1", "9.9.9"], []),
    ("1.x.x", ["1.0.0", "1.9.9"], ["2.0.0"]),
    ("v1.2.3", ["1.2.3"], ["1.2.4"]),
    ("1.2.3+build.5", ["1.2.3"], ["1.2.4"]),
    # A prerelease matches only a range naming a prerelease of the same MAJOR.MINOR.PATCH.
    ("^1.2.3-alpha", ["1.2.3-pre", "1.2.3-alpha", "1.2.3", "1.9.0"], ["1.2.4-pre", "1.2.3-0"]),
    (">=1.0.0-rc.1", ["1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"], ["1.0.0-rc.0", "1.0.1-rc.1"]),
    ("^1", ["1.5.0"], ["1.5.0-beta", "2.0.0-0"]),
])
def test_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    r = Range.parse(text)
    assert [v for v in inside if not r.matches(Version.parse(v))] == []
    assert [v for v in outside if r.matches(Version.parse(v))] == []


@pytest.mark.parametrize(("bad", "why"), [
    ("", "empty version range"),
    ("   ", "empty version range"),
    ("1.x.3", "a number cannot follow a wildcard"),
    ("^x.1", "a number cannot follow a wildcard"),
    (">=", "an operator needs a version after it"),
    ("^1 ~", "an operator needs a version after it"),
    ("01.2", "no leading zeros"),
    ("1.2.3-01", "no leading zeros"),
    ("1.2.3.4", "three numbers"),
    ("1.2-beta", "follows three numbers"),
    ("<>2", "one operator per bound"),
    (">= =1", "one operator per bound"),
    ("^1 ||", "an empty side of '||'"),
    ("|| 2", "an empty side of '||'"),
    ("1 - 2 - 3", "a hyphen range is LOW - HIGH"),
    ("1 - 2 >=1.5", "a hyphen range is LOW - HIGH"),
    ("latest", "'latest' is not a version range; valid"),
    (">=latest", "'>=latest' is not a version range; valid"),
    ("~>=1", "one operator per bound"),
])
def test_bad_ranges_say_what_is_wrong_and_show_valid_ones(bad: str, why: str) -> None:
    with pytest.raises(VersionError, match=r"; valid ranges look like \^1\.2, ") as caught:
        Range.parse(bad)
    assert why in str(caught.value)


@pytest.mark.parametrize(("bad", "why"), [
    pytest.param("^1" + "0" * 5000, "longer than 256 characters", id="5000-digits"),
    ("^9007199254740991", "the largest one a range may hold"),
    (">=1.0.0 <" + "9" * 17, "the largest one a range may hold"),
])
def test_ranges_beyond_npms_numbers_are_refused(bad: str, why: str) -> None:
    with pytest.raises(VersionError, match=why):
        Range.parse(bad)


def test_a_bad_part_is_named_in_its_range() -> None:
    with pytest.raises(VersionError, match=r"^'1\.x\.3' in '>=1 1\.x\.3' is not a version range"):
        Range.parse(">=1 1.x.3")


@pytest.mark.parametrize("text", ["1.0", "v1.2.3", "1.2.3+b5", "01.2.3", "1.2.3-", "1.2.3-a..b",
                                  "9007199254740992.0.0"])
def test_bad_versions(text: str) -> None:
    with pytest.raises(VersionError, match="expected MAJOR.MINOR.PATCH|largest"):
        Version.parse(text)


def test_prereleases_come_before_their_release_in_semver_order() -> None:
    texts = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1-0"]
    parsed = [Version.parse(t) for t in texts]
    assert sorted(reversed(parsed)) == parsed
    assert [str(v) for v in parsed] == texts


def test_best_takes_a_release_over_its_prereleases() -> None:
    pool = [Version.parse(t) for t in ("1.2.3-rc.1", "1.2.3", "1.2.4-beta")]
    assert Range.parse("^1.2.3-rc.0").best(pool) == Version(1, 2, 3)
    assert Range.parse(">=1.2.4-alpha").best(pool) == Version(1, 2, 4, ("beta",))


@given(versions, st.lists(versions, max_size=20))
def test_caret_picks_the_highest_compatible_version(base: Version, pool: list[Version]) -> None:
    best = Range.parse(f"^{base}").best(pool)
    def compatible_with(v: Version) -> bool:
        if base.major:
            return v.major == base.major
        if base.minor:
            return (v.major, v.minor) == (0, base.minor)
        return v == base

    compatible = [v for v in pool if v >= base and compatible_with(v)]
    assert best == (max(compatible) if compatible else None)


@given(versions)
def test_a_version_matches_its_exact_range(v: Version) -> None:
    assert Range.parse(str(v)).matches(v)
    assert Version.parse(str(v)) == v
