"""`baseshift backup` / `restore` on SQLite: a restore gives back the identical state."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.errors import ConfigError, InputError
from baseshift.core.settings import Settings
from baseshift.plugins.storage.memory import MemoryStateStore
from baseshift.plugins.storage.sqlite_store import SQLiteStateStore

pytestmark = pytest.mark.slow


def _runs(run_cli: Any) -> list[dict[str, Any]]:
    result = run_cli("runs", "--json")
    assert result.exit_code == 0, result.stderr
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


def test_restore_gives_back_exactly_the_backed_up_runs(run_cli: Any, tmp_path: Path) -> None:
    assert run_cli("run", "workflows/hello.bsw").exit_code == 0
    first = _runs(run_cli)
    shown = run_cli("show", first[0]["id"], "--json").stdout
    backup = tmp_path / "backups" / "state.db"
    result = run_cli("backup", str(backup))
    assert result.exit_code == 0 and "backed up 1 run(s)" in result.stdout
    assert run_cli("run", "workflows/hello.bsw").exit_code == 0
    assert len(_runs(run_cli)) == 2

    refused = run_cli("restore", str(backup))
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    result = run_cli("restore", str(backup), "--yes")
    assert result.exit_code == 0 and "restored 1 run(s)" in result.stdout
    assert _runs(run_cli) == first
    assert run_cli("show", first[0]["id"], "--json").stdout == shown


def test_backup_and_restore_refuse_what_they_cannot_do_safely(run_cli: Any,
                                                             tmp_path: Path) -> None:
    assert run_cli("run", "workflows/hello.bsw").exit_code == 0
    taken = tmp_path / "taken.db"
    taken.write_text("already here")
    result = run_cli("backup", str(taken))
    assert result.exit_code == 2 and "already exists" in result.stderr
    result = run_cli("restore", str(taken), "--yes")
    assert result.exit_code == 2 and "not a SQLite database" in result.stderr
    assert len(_runs(run_cli)) == 1  # nothing changed


async def test_a_backup_is_checked_to_be_a_base_shift_database(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    store = SQLiteStateStore.from_settings(Settings(data_dir=tmp_path / "data"))
    with pytest.raises(InputError, match="not a Base Shift database"):
        await store.restore(other)
    with pytest.raises(ConfigError, match="no database to back up"):
        await store.backup(tmp_path / "b.db")
    assert not hasattr(MemoryStateStore, "backup")  # the command says it cannot back up
