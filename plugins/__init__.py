"""The builtin plugins (registered by module name, see `core.plugins.DEFAULT_PLUGINS`).

Set before any plugin imports gRPC: a process here both holds gRPC channels or a gRPC server
(`uses grpc`, `baseshift worker --grpc`) and forks to run shell jobs. gRPC's fork handlers
are for children that go on using gRPC; ours exec at once, and with the handlers on, a fork
while gRPC threads are busy ("skipping fork() handlers") left children that crashed before
their exec. A value set in the environment wins."""
from __future__ import annotations

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
