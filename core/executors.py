"""The application's executors: one instance per step type, and what each can do besides run.

The engine, a queue worker and the gRPC service all run jobs with these same instances, so
they are built once and handed out read-only. Optional abilities (`AcceptsCalls`,
`Closable`, in core/protocols.py) are checked here, once, when the set is built."""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from .protocols import AcceptsCalls, Closable, Executor


class Executors(Mapping[str, Executor]):
    """Executor instances by step type name (`uses NAME`), read-only."""

    def __init__(self, classes: Mapping[str, type[Executor]]) -> None:
        self._by_name: dict[str, Executor] = {name: cls() for name, cls in classes.items()}
        self._accepting: dict[str, AcceptsCalls] = {
            name: executor for name, executor in self._by_name.items()
            if isinstance(executor, AcceptsCalls)}

    def __getitem__(self, name: str) -> Executor:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def acceptor(self, name: str) -> AcceptsCalls | None:
        """Executor `name` when its jobs wait for outside calls, else None."""
        return self._accepting.get(name)

    async def aclose(self) -> None:
        """Close the executors that hold shared resources (the application is stopping)."""
        for executor in self._by_name.values():
            if isinstance(executor, Closable):
                await executor.aclose()
