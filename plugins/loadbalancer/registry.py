"""The registered servers and the last reload: the store's shared document when the store
keeps them (every server of the fleet sees one registry), else `data_dir/loadbalancer.json`."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baseshift.core.capabilities import SharedDocuments

from .nginx import Server, write_atomically
from .settings import parse_address, parse_weight

log = logging.getLogger("baseshift.loadbalancer")

DOCUMENT = "loadbalancer"
FILE = "loadbalancer.json"


@dataclass(slots=True)
class Registry:
    servers: list[Server] = field(default_factory=list)
    reloaded_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"servers": [s.to_json() for s in self.servers], "reloaded_at": self.reloaded_at}

    @classmethod
    def from_json(cls, data: Any) -> Registry:
        if not isinstance(data, dict):
            return cls()
        servers = []
        for item in data.get("servers") or []:
            # validated again: a registry edited by hand must not inject either
            servers.append(Server(parse_address(item["address"]),
                                  parse_weight(item.get("weight"))))
        reloaded = data.get("reloaded_at")
        return cls(servers, float(reloaded) if isinstance(reloaded, int | float) else None)


async def load(store: object, data_dir: Path) -> Registry:
    if isinstance(store, SharedDocuments):
        return Registry.from_json(await store.load_document(DOCUMENT))
    path = data_dir / FILE
    if not path.is_file():
        return Registry()
    return Registry.from_json(json.loads(path.read_text(encoding="utf-8")))


async def save(store: object, data_dir: Path, registry: Registry) -> None:
    if isinstance(store, SharedDocuments):
        await store.save_document(DOCUMENT, registry.to_json())
        return
    write_atomically(data_dir / FILE, json.dumps(registry.to_json()))
