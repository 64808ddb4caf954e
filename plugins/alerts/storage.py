"""Where the rules and the alerts' state live: the store's shared documents when it keeps
them (every server of a fleet sees the same rules and state, so a new leader carries on),
else JSON files in `data_dir`. Changes are made under one lock (the store's shared lock
when it has one), so two servers editing rules at once do not lose an edit."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from baseshift.core.capabilities import SharedDocuments, SharedLocks
from baseshift.core.errors import StoreError
from baseshift.core.json_text import write_json_file

from .rules import Rule
from .state import Alert

log = logging.getLogger("baseshift.alerts")

RULES = "alert_rules"
ALERTS = "alert_state"
LOCK = "alerts"


class AlertStorage:
    """The rules and alert state of one application's store."""

    def __init__(self, store: object, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def changing(self) -> AsyncIterator[None]:
        """Hold the lock for a read-change-write of the rules or the state."""
        async with self._lock:
            if isinstance(self.store, SharedLocks):
                async with self.store.exclusive(LOCK):
                    yield
            else:
                yield

    async def rules(self) -> list[Rule]:
        return (await self.rule_sets())[0]

    async def rule_sets(self) -> tuple[list[Rule], list[Rule]]:
        """The rules, and the retired ones: deleted, but evaluated (as disabled) until
        their alerts have resolved and the notices of it have gone out
        (`Alerting.delete`)."""
        data = await self._load(RULES)
        return ([Rule.from_json(r) for r in data.get("rules") or ()],
                [Rule.from_json(r) for r in data.get("retired") or ()])

    async def save_rules(self, rules: list[Rule], retired: list[Rule]) -> None:
        await self._save(RULES, {"version": 1, "rules": [r.to_json() for r in rules],
                                 "retired": [r.to_json() for r in retired]})

    async def alerts(self) -> dict[str, Alert]:
        data = await self._load(ALERTS)
        found = {}
        for item in data.get("alerts") or ():
            try:
                alert = Alert.from_json(item)
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring an unreadable stored alert: %r", item)
                continue
            found[alert.fingerprint] = alert
        return found

    async def save_alerts(self, alerts: dict[str, Alert]) -> None:
        await self._save(ALERTS, {"version": 1,
                                  "alerts": [a.to_json() for a in alerts.values()]})

    async def _load(self, name: str) -> dict[str, Any]:
        data: Any = None
        if isinstance(self.store, SharedDocuments):
            data = await self.store.load_document(name)
        else:
            path = self.data_dir / f"{name}.json"
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                data = None
            except (OSError, ValueError) as exc:  # never taken as empty: a save would
                raise StoreError(f"cannot read the alert file {path}: {exc}",  # drop it
                                 hint="restore the file from a backup, or remove it to "
                                 "start again without it") from exc
        return data if isinstance(data, dict) else {}

    async def _save(self, name: str, value: dict[str, Any]) -> None:
        if isinstance(self.store, SharedDocuments):
            await self.store.save_document(name, value)
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_json_file(self.data_dir / f"{name}.json", value)
