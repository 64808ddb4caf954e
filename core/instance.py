"""This process's instance id: 16 random hex digits made when the process starts (and made
anew in a forked child), so the processes behind one address (`serve --processes N`, a
fleet behind a load balancer) can be told apart by anyone who may ask, without telling them
a fact of the host such as a pid."""
from __future__ import annotations

import os
import secrets


def _new() -> str:
    return secrets.token_hex(8)


_INSTANCE = _new()


def _forked() -> None:
    global _INSTANCE
    _INSTANCE = _new()


os.register_at_fork(after_in_child=_forked)


def instance_id() -> str:
    """The id of this process (stable for its life, never shared with another process)."""
    return _INSTANCE
