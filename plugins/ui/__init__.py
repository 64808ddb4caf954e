"""The web UI: server-rendered pages enhanced by htmx."""
