"""Where a state store tells its observers (the metrics and tracing plugins) that one of its
operations runs, without the kernel knowing what a transaction is made of (SQL or a dict).

Each builtin store has a `calls: StoreCalls` and marks its operations with `@observed(name)`:
the operation names are fixed words of the store's own (`apply`, `load_run`, `claim_run`, …),
never anything a user typed, so an observer may use them as a metric label or a span name.
An observer listens on the store of its application (`listen`, at `startup`): the listeners
belong to that store object, so two applications in one process never see each other's calls.

Nobody listening (metrics and tracing off), an observed call costs one attribute read and a
truth test before the operation runs as it would unobserved.
"""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, runtime_checkable

P = ParamSpec("P")
R = TypeVar("R")

StoreListener = Callable[[str, str], AbstractContextManager[object] | None]
"""Called with (store name, operation) as the operation begins: a context manager entered
around the operation (it sees the operation's exception, if any), or None to leave this call
alone."""

_UNOBSERVED: AbstractContextManager[None] = nullcontext()


class StoreCalls:
    """The listeners of one store's operations, by the name each observer registered with
    (registering a name again replaces its listener: an application started twice does not
    count twice)."""

    __slots__ = ("listeners", "store")

    def __init__(self, store: str) -> None:
        self.store = store
        self.listeners: dict[str, StoreListener] = {}

    def listen(self, name: str, listener: StoreListener) -> None:
        self.listeners[name] = listener

    def unlisten(self, name: str) -> None:
        self.listeners.pop(name, None)

    def __call__(self, operation: str) -> AbstractContextManager[object]:
        """The context manager around one call of `operation`: every listener's, nested in
        registration order."""
        managers = [m for listener in self.listeners.values()
                    if (m := listener(self.store, operation)) is not None]
        if not managers:
            return _UNOBSERVED
        if len(managers) == 1:
            return managers[0]
        return _Entered(managers)


class _Entered(AbstractContextManager[object]):
    """Several listeners' managers as one: entered in order, exited in reverse, an exit
    guaranteed to every one entered (ExitStack)."""

    __slots__ = ("managers", "stack")

    def __init__(self, managers: list[AbstractContextManager[object]]) -> None:
        self.managers = managers
        self.stack = ExitStack()

    def __enter__(self) -> object:
        with ExitStack() as entering:
            for manager in self.managers:
                entering.enter_context(manager)
            self.stack = entering.pop_all()
        return None

    def __exit__(self, *exc: Any) -> bool | None:
        return self.stack.__exit__(*exc)


@runtime_checkable
class ObservedStore(Protocol):
    """A store whose operations can be observed (every builtin one)."""

    calls: StoreCalls


S = TypeVar("S", bound=ObservedStore)


def observed(operation: str) -> Callable[[Callable[Concatenate[S, P], Awaitable[R]]],
                                         Callable[Concatenate[S, P], Coroutine[Any, Any, R]]]:
    """Decorate a store's async method: its calls are observed as `operation`."""

    def decorate(method: Callable[Concatenate[S, P], Awaitable[R]]
                 ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            calls = self.calls
            if not calls.listeners:
                return await method(self, *args, **kwargs)
            with calls(operation):
                return await method(self, *args, **kwargs)

        return call

    return decorate
