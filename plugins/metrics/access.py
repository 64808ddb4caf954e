"""The permission the metrics routes need (only `admin` holds it among the builtin roles)."""
from __future__ import annotations

from baseshift.core.access import Permission

METRICS_READ = Permission("metrics:read", "scrape GET /metrics and read GET /api/v1/metrics "
                          "(request, run and job counts, resource use)")
