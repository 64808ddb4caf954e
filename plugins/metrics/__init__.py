"""Prometheus metrics: `GET /metrics` and `GET /api/v1/metrics` in servers, `/metrics` on
`baseshift worker --metrics-port` (docs/operations.md lists every metric)."""
