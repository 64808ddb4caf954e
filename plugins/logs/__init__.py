"""The log store's faces (docs/operations.md "Logs"): capturing the server's, the workers'
and the attempts' lines into the state store, `/api/v1/logs` (search, export, follow) and
the UI's log search page. The lines themselves are kept by the stores (core/loglines.py)."""
