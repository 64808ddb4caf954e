"""The optional drivers of the builtin plugins: which modules each needs, and the extra of
`pip install 'baseshift[...]'` that installs them (pyproject.toml's optional dependencies).

A backend or executor that needs one checks it before importing anything, so a missing
driver is a ConfigError or a check error naming the command, not an ImportError."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.diagnostics import Diagnostic
from baseshift.core.registry import Requirement, extra

if TYPE_CHECKING:
    from baseshift.core.plan import Plan

POSTGRES = extra("postgres", "psycopg")
REDIS = extra("redis", "redis")
MONGO = extra("mongo", "pymongo")
KUBERNETES = extra("kubernetes", "kubernetes")
GRPC = extra("grpc", "grpc", "grpc_tools", "google.protobuf")
GRAPHQL = extra("graphql", "graphql")
OTEL = extra("otel", "opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def missing_driver(plan: Plan, executor: str, requirement: Requirement) -> list[Diagnostic]:
    """A `dsl.missing-extra` error at each job of `plan` that uses `executor` while the
    driver it needs is not installed (for executors' `validate_plan`), so `check` says what
    to install instead of the job failing at run time."""
    users = [job for job in plan.jobs if job.uses == executor]
    absent = requirement.missing() if users else []  # most plans use neither: no lookup
    return [Diagnostic(plan.path, job.span, "dsl.missing-extra",
                       f"job '{job.name}' uses {executor}, which needs {', '.join(absent)} "
                       f"(not installed)", f"install it with: {requirement.install}")
            for job in users if absent]
