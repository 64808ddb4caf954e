"""Versions and ranges as `uses name@range` resolves them."""
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
])
def test_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    r = Range.parse(text)
    assert all(r.matches(Version.parse(v)) for v in inside)
    assert not any(r.matches(Version.parse(v)) for v in outside)


@pytest.mark.parametrize("bad", ["", "^x", "1.2.3.4", "v1", ">=", "01.2"])
def test_bad_ranges_say_what_is_expected(bad: str) -> None:
    with pytest.raises(VersionError, match="expected"):
        Range.parse(bad)


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
