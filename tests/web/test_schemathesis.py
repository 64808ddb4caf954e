"""Schemathesis against the server's own OpenAPI document: generated requests for every
documented operation never get a 5xx, and responses match the status codes, content types
and schemas the document declares.

The ASGI app runs in-process with its lifespan started once (schemathesis' ASGI client keeps
one event loop thread for it), over SQLite and the example workflows. Examples are few and
derandomized, so a run is repeatable and takes well under a minute.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from baseshift.core.app import BaseShift
from baseshift.core.settings import Settings
from baseshift.web.app import create_app

REPO = Path(__file__).resolve().parents[2]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("schemathesis")
    workflows = root / "workflows"
    shutil.copytree(REPO / "workflows", workflows,
                    ignore=shutil.ignore_patterns("__pycache__"))
    bs = BaseShift(Settings(load_entrypoints=False, store="sqlite", data_dir=root / "data",
                            workflows_dir=workflows))
    app = create_app(baseshift=bs)
    try:
        yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    finally:
        shutdown_lifespans()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
