"""The stash holds plugin state by typed keys."""
from __future__ import annotations

from baseshift.core.stash import Stash, StashKey

COUNT: StashKey[int] = StashKey("test.count")
NAMES: StashKey[list[str]] = StashKey("test.names")


def test_entries_are_read_written_and_removed_by_key() -> None:
    stash = Stash()
    assert COUNT not in stash and stash.get(COUNT) is None and stash.get(COUNT, 0) == 0
    stash[COUNT] = 3
    assert COUNT in stash and stash[COUNT] == 3 and stash.get(COUNT, 0) == 3
    assert stash.pop(COUNT) == 3 and stash.pop(COUNT) is None and COUNT not in stash


def test_setdefault_keeps_the_first_value() -> None:
    stash = Stash()
    stash.setdefault(NAMES, []).append("a")
    stash.setdefault(NAMES, ["ignored"]).append("b")
    assert stash[NAMES] == ["a", "b"]


def test_keys_of_one_name_are_one_entry() -> None:
    stash = Stash()
    stash[COUNT] = 1
    assert stash[StashKey[int]("test.count")] == 1
