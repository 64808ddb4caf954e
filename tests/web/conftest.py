"""Web fixtures: the ASGI app with its lifespan running, and an httpx client on it."""
from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.web.app import create_app
from tests.auth_support import NO_FIRST_ADMIN, bearer, token_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "workflows"

Client = tuple[BaseShift, httpx.AsyncClient]


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    """A private copy of the example workflows folder (tests may add or break files)."""
    target = tmp_path / "workflows"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def make_client(tmp_path: Path, workflows_dir: Path) -> Callable[..., Any]:
    """`async with make_client(store="sqlite") as (bs, client):` — the server app started
    (workflows loaded, interrupted runs resumed) and an httpx client calling it in-process,
    with an API token of a user holding `role` (`admin` by default; None: anonymous)."""

    @asynccontextmanager
    async def factory(*, workflows: Path | None = None, plugins: tuple[object, ...] = (),
                      role: str | None = "admin", **settings: Any) -> AsyncIterator[Client]:
        settings.setdefault("store", "memory")
        settings.setdefault("templates", "memory")
        settings.setdefault("data_dir", tmp_path / "data")
        settings["extra"] = {**NO_FIRST_ADMIN, **settings.get("extra", {})}
        settings["workflows_dir"] = workflows or workflows_dir
        bs = BaseShift(Settings(load_entrypoints=False, **settings), plugins=plugins)
        app = create_app(baseshift=bs)
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            headers = {} if role is None else bearer(await token_for(bs, role))
            async with httpx.AsyncClient(transport=transport, headers=headers,
                                         base_url="http://localhost") as client:
                yield bs, client

    return factory
