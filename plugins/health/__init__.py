"""Health checks: is the process alive, and is it ready to serve (its backends answer)."""
