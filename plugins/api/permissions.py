"""Permissions the API declares beside the builtin ones (`runs.register_permissions`)."""
from __future__ import annotations

from baseshift.core.access import Permission

SECRET_READ = Permission("secret:read", "see the clear values of a run's secret inputs and "
                         "outputs (GET /api/v1/workflows/ID?reveal=secrets)", scoped=True)
