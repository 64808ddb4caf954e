"""Functions the `python` executor tests call by name ("executor_samples:NAME")."""
from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

not_callable = 42
calls = 0
started = threading.Event()
release = threading.Event()


def noop() -> None:
    return None


async def async_noop() -> None:
    return None


def add(a: int, b: int, *, scale: int = 1) -> int:
    return (a + b) * scale


async def async_greet(name: str, punctuation: str = "!") -> dict[str, str]:
    await asyncio.sleep(0)
    return {"greeting": f"hello {name}{punctuation}"}


def thread_name() -> str:
    return threading.current_thread().name


def echo_kwargs(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def echo_args(*args: Any) -> list[Any]:
    return list(args)


def count() -> int:
    global calls
    calls += 1
    return calls


def returns_tuple() -> tuple[int, tuple[str, str]]:
    return (1, ("a", "b"))


def returns_int_keys() -> dict[int, str]:
    return {1: "one"}


def returns_float() -> float:
    return 1.5


def returns_set() -> set[int]:
    return {1, 2}


def returns_nan() -> float:
    return float("nan")


def returns_coroutine() -> Any:
    return async_greet("coroutine")


def boom() -> None:
    raise ValueError("boom")


async def async_boom() -> None:
    raise KeyError("missing")


def exits() -> None:
    sys.exit(3)


def fails_cleanly() -> None:
    from baseshift.core.errors import ExecutionError

    raise ExecutionError("nothing to do today")


def blocks() -> str:
    """Block the worker thread until the test releases it."""
    started.set()
    release.wait(10)
    return "released"


class Greeter:
    @staticmethod
    def hello(name: str) -> str:
        return f"hello {name}"


class AsyncCallable:
    async def __call__(self, value: int) -> int:
        await asyncio.sleep(0)
        return value * 2


async_callable = AsyncCallable()


class Sleeper:
    """An async step that records whether its cleanup ran when cancelled."""

    cleaned = False

    @classmethod
    async def sleep(cls) -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cls.cleaned = True


def chatty(tag: str) -> str:
    """Prints to stdout and stderr, partly without a final newline."""
    print(f"{tag} out 1")
    print(f"{tag} err", file=sys.stderr)
    sys.stdout.write(f"{tag} tail")
    return tag


async def async_chatty(tag: str) -> str:
    print(f"{tag} async out")
    await asyncio.sleep(0.01)
    print(f"{tag} async after")
    return tag
