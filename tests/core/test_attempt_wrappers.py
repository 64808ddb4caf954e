"""Several job wrappers around one attempt behave as nested `with` and `async with` blocks,
the first outermost (core/attempts.py `_Wrapped`): each exit sees what the one inside left
of the block's exception (nothing when it suppressed it, its own when it raised one).
Wrappers may be plain or async context managers, mixed."""
from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import pytest

from baseshift.core.attempts import _Wrapped


class Wrapper:
    """Notes what it sees; on exit does `does`: "" (nothing), "suppress" or "raise"."""

    def __init__(self, name: str, seen: list[str], does: str = "") -> None:
        self.name, self.seen, self.does = name, seen, does

    async def __aenter__(self) -> None:
        if self.does == "fail-enter":
            raise KeyError(f"{self.name} cannot enter")
        self.seen.append(f"enter {self.name}")

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        self.seen.append(f"exit {self.name} {type(exc).__name__ if exc else '-'}")
        if self.does == "raise":
            raise RuntimeError(f"{self.name} broke")
        return self.does == "suppress"


class PlainWrapper:
    """`Wrapper` as a plain (not async) context manager."""

    def __init__(self, name: str, seen: list[str], does: str = "") -> None:
        self.wrapper = Wrapper(name, seen, does)

    def __enter__(self) -> None:
        _sync(self.wrapper.__aenter__())

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        return _sync(self.wrapper.__aexit__(kind, exc, tb))


def _sync(coroutine: Any) -> Any:
    """Run a coroutine that never awaits (a `Wrapper` method) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine awaited")


async def _outcome(does: tuple[str, ...], body_raises: bool, nested: bool,
                   plain: tuple[bool, ...] = ()) -> list[str]:
    seen: list[str] = []
    wrappers = [(PlainWrapper if i < len(plain) and plain[i] else Wrapper)(f"w{i}", seen, d)
                for i, d in enumerate(does)]
    try:
        if nested:  # the reference: literal nesting, through an exit stack
            async with AsyncExitStack() as stack:
                for wrapper in wrappers:
                    if isinstance(wrapper, PlainWrapper):
                        stack.enter_context(wrapper)
                    else:
                        await stack.enter_async_context(wrapper)
                seen.append("body")
                if body_raises:
                    raise ValueError("body")
        else:
            async with _Wrapped(wrappers):  # type: ignore[arg-type]
                seen.append("body")
                if body_raises:
                    raise ValueError("body")
        seen.append("no exception")
    except Exception as exc:
        seen.append(f"raised {type(exc).__name__}")
    return seen


@pytest.mark.parametrize("does", [
    ("",), ("", ""), ("", "", ""), ("", "suppress"), ("suppress", ""), ("", "raise"),
    ("suppress", "raise"), ("raise", ""), ("", "raise", "suppress"), ("", "fail-enter"),
    ("", "", "fail-enter"),
])
@pytest.mark.parametrize("body_raises", [False, True])
async def test_wrappers_nest_as_async_with_blocks(does: tuple[str, ...],
                                                   body_raises: bool) -> None:
    assert await _outcome(does, body_raises, nested=False) == \
        await _outcome(does, body_raises, nested=True)


@pytest.mark.parametrize("does", [
    ("", ""), ("", "suppress"), ("suppress", "raise"), ("raise", ""), ("", "raise", "suppress"),
    ("", "fail-enter"), ("", "", "fail-enter"),
])
@pytest.mark.parametrize("plain", [(True, False, True), (False, True, False), (True, True, True)])
@pytest.mark.parametrize("body_raises", [False, True])
async def test_plain_and_async_wrappers_mixed_nest_alike(
        does: tuple[str, ...], plain: tuple[bool, ...], body_raises: bool) -> None:
    found = await _outcome(does, body_raises, nested=False, plain=plain)
    assert found == await _outcome(does, body_raises, nested=True, plain=plain)
    assert "body" in found or "fail-enter" in does
