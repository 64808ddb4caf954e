"""The compliance report: `GET /api/v1/compliance/report`, the UI's Compliance page and its
HTML and PDF exports (`compliance:read`), built from every plugin's `compliance_controls`."""
