"""core/storecalls.py: a store's observed operations reach the listeners of that store (in
registration order, seeing the operation's exception), cost nothing when nobody listens,
and a listener may leave a call alone."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from baseshift.core.storecalls import ObservedStore, StoreCalls, StoreListener, observed


class _Store:
    def __init__(self) -> None:
        self.calls = StoreCalls("toy")

    @observed("save")
    async def save(self, value: int, *, fail: bool = False) -> int:
        if fail:
            raise ValueError("refused")
        return value * 2


def _recorder(name: str, seen: list[str]) -> StoreListener:
    @contextmanager
    def around(store: str, operation: str) -> Iterator[None]:
        seen.append(f"{name} enter {store}.{operation}")
        try:
            yield
        except Exception as exc:
            seen.append(f"{name} saw {exc}")
            raise
        seen.append(f"{name} exit")

    return around


async def test_nobody_listening_runs_the_operation_as_is() -> None:
    store = _Store()
    assert isinstance(store, ObservedStore)
    assert await store.save(2) == 4
    assert store.save.__name__ == "save"


async def test_listeners_nest_in_order_and_see_the_exception() -> None:
    store, seen = _Store(), list[str]()
    store.calls.listen("a", _recorder("a", seen))
    store.calls.listen("b", _recorder("b", seen))
    assert await store.save(3) == 6
    assert seen == ["a enter toy.save", "b enter toy.save", "b exit", "a exit"]
    seen.clear()
    with pytest.raises(ValueError, match="refused"):
        await store.save(3, fail=True)
    assert seen == ["a enter toy.save", "b enter toy.save", "b saw refused", "a saw refused"]


async def test_a_listener_may_skip_a_call_and_listening_again_replaces() -> None:
    store, seen = _Store(), list[str]()
    store.calls.listen("a", lambda store, operation: None)
    assert await store.save(1) == 2
    store.calls.listen("a", _recorder("a", seen))
    store.calls.listen("a", _recorder("again", seen))
    await store.save(1)
    assert seen == ["again enter toy.save", "again exit"]
    store.calls.unlisten("a")
    store.calls.unlisten("a")  # twice is fine
    await store.save(1)
    assert len(seen) == 2


async def test_a_listener_that_fails_to_enter_leaves_the_others_exited() -> None:
    store, seen = _Store(), list[str]()

    class Broken(AbstractContextManager[object]):
        def __enter__(self) -> object:
            raise RuntimeError("broken listener")

        def __exit__(self, *exc: object) -> None:
            return None

    store.calls.listen("a", _recorder("a", seen))
    store.calls.listen("b", lambda store, operation: Broken())
    with pytest.raises(RuntimeError, match="broken listener"):
        await store.save(1)
    assert seen == ["a enter toy.save", "a saw broken listener"]
