"""Schemathesis against the server's own OpenAPI document, with every check it has: for
every documented operation, requests the document allows are accepted and those it forbids
are refused (positive and negative data), nothing answers 5xx, answers match the declared
status codes, content types, headers and schemas, and a 405's `Allow` lists the documented
methods.

The ASGI app runs in-process with its lifespan started once (schemathesis' ASGI client keeps
one event loop thread for it), over SQLite and the example workflows. Examples are few and
derandomized, so a run is repeatable and takes well under a minute.
"""
from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config._auth import AuthConfig
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import positive_data_acceptance

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.plugins.auth.passwords import password_problem
from baseshift.web.app import create_app
from tests.auth_support import NO_FIRST_ADMIN, bearer, token_for

REPO = Path(__file__).resolve().parents[2]
load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())

pytestmark = pytest.mark.slow

HOST = "localhost"
"""schemathesis' ASGI client says `testserver`, a name the server's allow-list refuses."""


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("schemathesis")
    workflows = root / "workflows"
    shutil.copytree(REPO / "workflows", workflows,
                    ignore=shutil.ignore_patterns("__pycache__"))
    settings = Settings(load_entrypoints=False, store="sqlite", data_dir=root / "data",
                        workflows_dir=workflows, extra=NO_FIRST_ADMIN)
    token = asyncio.run(_admin_token(settings))
    app = create_app(baseshift=BaseShift(settings))
    try:
        loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app,
                                                headers={"host": HOST, **bearer(token)})
        # the document's `bearer` scheme, filled in for every generated call (and left out
        # by the negative cases that check a missing credential is refused)
        loaded.config.auth = AuthConfig(openapi={"bearer": {"bearer": token}})
        loaded.config.generation.update(modes=list(GenerationMode))
        loaded.hook(filter_body)
        yield loaded
    finally:
        shutdown_lifespans()


async def _admin_token(settings: Settings) -> str:
    async with BaseShift(settings) as bs:
        return await token_for(bs, "admin")


def filter_body(context: Any, body: Any) -> bool:
    """What JSON Schema cannot state, taught to the generator: a published template's step
    names (given, or `step<N>` by position) differ, and a password passes the policy. The
    document says so in words and the server answers 422; any other generated body is sent
    as it is."""
    operation = context.operation
    if operation is None or not isinstance(body, dict):
        return True
    if operation.path.startswith("/api/v1/users") and isinstance(body.get("password"), str):
        # the password policy (plugins/auth/passwords.py) refuses common and repetitive ones
        return password_problem(body["password"], str(body.get("name", ""))) is None
    if operation.path != "/api/v1/templates":
        return True
    steps = body.get("steps")
    if not isinstance(steps, list):
        return True
    names = [s.get("name", f"step{i + 1}") if isinstance(s, dict) else i
             for i, s in enumerate(steps)]
    return len(set(map(repr, names))) == len(names)


schema = schemathesis.pytest.from_fixture("api_schema")
POLICY = {("POST", "/api/v1/users"), ("PATCH", "/api/v1/users/{name}")}
SQL_TEXT = {("POST", "/api/v1/database/optimize_query")}
"""Any string is a schema-valid query; only one read-only statement the database can plan
is explained, the rest answer 422 (tests/web/test_database_api.py checks which)."""
RULES = {("POST", "/api/v1/alerts"), ("PUT", "/api/v1/alerts/{name}")}
"""An alert rule's params depend on its kind, and which kinds and notifiers a server takes
on its configuration (no_worker needs the PostgreSQL queue, email an SMTP server): the
document says so in words and the server answers 422 naming the field
(tests/web/test_api_alerts.py checks which)."""
LOG_QUERIES = {("GET", "/api/v1/logs"), ("POST", "/api/v1/logs/query"),
               ("POST", "/api/v1/logs/export")}
"""Any string is a schema-valid log query; one that does not parse answers 400 with its
diagnostics (tests/web/test_api_logs.py)."""


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: Any) -> None:
    # a password the policy refuses is schema-valid (no JSON Schema says "not a common
    # password"): those two operations answer 422 for it, as tests/web/test_admin_api.py and
    # tests/plugins/auth/test_passwords.py check; so does most SQL text (SQL_TEXT), and a
    # log query that does not parse (LOG_QUERIES)
    excluded = [positive_data_acceptance] \
        if (case.method.upper(), case.path) in POLICY | SQL_TEXT | RULES | LOG_QUERIES else []
    case.call_and_validate(base_url=f"http://{HOST}", checks=ALL_CHECKS,
                           excluded_checks=excluded)
