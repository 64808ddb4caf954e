"""Secrets from environment variables: `${secret.API_KEY}` reads `BASESHIFT_SECRET_API_KEY`,
then `API_KEY`."""
from __future__ import annotations

import os

from baseshift.core.hookspecs import hookimpl


@hookimpl(trylast=True)
def resolve_secret(name: str) -> str | None:
    return os.environ.get(f"BASESHIFT_SECRET_{name}", os.environ.get(name))
