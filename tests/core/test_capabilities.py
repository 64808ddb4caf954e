"""A store's optional abilities are protocols checked with isinstance; a feature that needs one
the chosen store lacks stops the start with an error naming both."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.capabilities import (
    Backups,
    Leadership,
    Retention,
    SharedDocuments,
    SharedLocks,
)
from baseshift.core.errors import ConfigError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.protocols import RunAnalytics, StateStore
from baseshift.core.settings import Settings
from baseshift.core.stash import SERVING
from baseshift.plugins.storage.memory import MemoryStateStore
from baseshift.plugins.storage.pg_store import PostgresStateStore
from baseshift.plugins.storage.sqlite_store import SQLiteStateStore

ABILITIES = (Backups, Retention, Leadership, SharedLocks, SharedDocuments)


@pytest.mark.parametrize("store, has", [
    (MemoryStateStore, {Leadership}),
    (SQLiteStateStore, {Backups, Leadership}),
    (PostgresStateStore, set(ABILITIES)),
])
def test_the_builtin_stores_have_the_abilities_they_document(store: type[Any],
                                                             has: set[type]) -> None:
    assert {a for a in ABILITIES if issubclass(store, a)} == has
    assert issubclass(store, RunAnalytics)


class WithoutAnalytics(MemoryStateStore):
    """A store that runs workflows but answers no analytics queries."""

    name: ClassVar[str] = "plain"
    workflow_performance = workflow_performance_summary = None  # type: ignore[assignment]
    job_success_rate = average_job_duration = None  # type: ignore[assignment]


class OffersPlain:
    @hookimpl
    def register_backends(self) -> list[type]:
        return [WithoutAnalytics]


def plain_app(tmp_path: Path, **settings: Any) -> BaseShift:
    return BaseShift(Settings(store="plain", data_dir=tmp_path, load_entrypoints=False,
                              workflows_dir=tmp_path, **settings), plugins=(OffersPlain(),))


async def test_a_server_whose_store_has_no_analytics_does_not_start(tmp_path: Path) -> None:
    bs = plain_app(tmp_path)
    assert isinstance(bs.store, StateStore) and not isinstance(bs.store, RunAnalytics)
    bs.stash[SERVING] = True
    with pytest.raises(ConfigError, match=r"store 'plain' cannot answer analytics queries "
                       r"\(RunAnalytics\), which the analytics API \(plugin api_analytics\) "
                       "needs") as caught:
        async with bs:
            pass
    assert caught.value.hint is not None and "disable plugin api_analytics" in caught.value.hint


async def test_without_the_analytics_api_the_same_store_serves(tmp_path: Path) -> None:
    async with plain_app(tmp_path) as bs:  # a command line serves no API: no check
        assert bs.store.name == "plain"
    served = plain_app(tmp_path, disabled_plugins=("api_analytics",))
    served.stash[SERVING] = True
    async with served:
        assert served.store.name == "plain"


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_backup_with_a_store_that_cannot_names_the_store(run_cli: Any, tmp_path: Path,
                                                         command: str) -> None:
    extra = ["--yes"] if command == "restore" else []
    (tmp_path / "b.db").write_bytes(b"")  # restore checks the file exists first
    result = run_cli(command, str(tmp_path / "b.db"), *extra,
                     env={"BASESHIFT_STORE": "memory"})
    assert result.exit_code != 0
    assert f"the 'memory' store cannot {command}" in result.stderr
