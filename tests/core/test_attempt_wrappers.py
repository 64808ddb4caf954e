"""Several job wrappers around one attempt behave as nested `async with` blocks, the first
outermost (core/attempts.py `_around`): each exit sees what the one inside left of the
block's exception (nothing when it suppressed it, its own when it raised one)."""
from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

import pytest

from baseshift.core.attempts import _around


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


async def _outcome(does: tuple[str, ...], body_raises: bool, nested: bool) -> list[str]:
    seen: list[str] = []
    wrappers = [Wrapper(f"w{i}", seen, d) for i, d in enumerate(does)]
    try:
        if nested:  # the reference: literal nesting, through an exit stack
            async with AsyncExitStack() as stack:
                for wrapper in wrappers:
                    await stack.enter_async_context(wrapper)
                seen.append("body")
                if body_raises:
                    raise ValueError("body")
        else:
            async with _around(wrappers):  # type: ignore[arg-type]
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


async def test_no_wrapper_is_nothing_around_the_attempt() -> None:
    seen: list[str] = []
    async with _around([]):
        seen.append("body")
    assert seen == ["body"]
