"""`--server URL`: what makes a command work through a server's API instead of on a local
data dir, for every family's commands (`runs`, `show`, `run`, `cancel`, `retry`,
`templates`)."""
from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from baseshift.core.errors import InputError, Unauthorized

from .credentials import CredentialFile, server_url

if TYPE_CHECKING:
    from .http import Remote

DEFAULT = "default"
ENV = "BASESHIFT_SERVER"


def server_options(p: argparse.ArgumentParser) -> None:
    """`--server` and `--ca-file`. SUPPRESS: on a sub-parser (`templates list`), a default
    would overwrite the value given before the action."""
    p.add_argument("--server", metavar="URL", default=argparse.SUPPRESS,
                   help="work through this server's API, signed in with `baseshift login` "
                   f"(`{DEFAULT}`: the server signed in to last; env {ENV}); without it the "
                   "command works on the local data dir")
    p.add_argument("--ca-file", metavar="PEM", default=argparse.SUPPRESS,
                   help="trust the server certificates this authority signed (default: the "
                   "one given to `baseshift login`, else the system's authorities)")


def chosen_server(args: argparse.Namespace) -> str | None:
    """The server named by --server, or by $BASESHIFT_SERVER unless a local store is named
    on the command line (--data-dir, --store); None: work locally."""
    given = getattr(args, "server", None)
    local = [flag for flag, name in (("--data-dir", "data_dir"), ("--store", "store"),
                                     ("--templates", "templates"))
             if getattr(args, name, None)]
    if given and local:
        raise InputError(f"--server and {local[0]} name two places; give one",
                         hint="--server works through the API, --data-dir and --store on "
                              "a local store")
    if given:
        return str(given)
    if local:
        return None
    return os.environ.get(ENV) or None


def remote_for(args: argparse.Namespace) -> Remote | None:
    """A client of the chosen server (see `chosen_server`), or None to work locally.

    httpx is imported here, not at the top: every command line loads this module."""
    chosen = chosen_server(args)
    if chosen is None:
        if getattr(args, "ca_file", None):
            raise InputError("--ca-file is for a server: give --server URL too")
        return None
    file = CredentialFile()
    credentials = file.load()
    if chosen == DEFAULT:
        if credentials.default is None:
            raise Unauthorized("--server default: not signed in to any server",
                               hint="run `baseshift login URL`")
        url = credentials.default
    else:
        url = server_url(chosen)
    from .http import Remote

    return Remote(url, credentials.servers.get(url), file, ca_file=getattr(args, "ca_file", None))
