"""The audit trail's faces: `GET /api/v1/audit-logs`, the UI's audit page and
`baseshift audit verify|list` (the trail itself is kept by the stores, core/audit.py)."""
