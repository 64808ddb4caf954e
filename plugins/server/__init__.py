"""`baseshift serve`: the ASGI server."""
