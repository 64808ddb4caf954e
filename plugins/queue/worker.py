"""`baseshift worker`: executes the attempts servers queue in PostgreSQL, and/or serves the
gRPC JobExecutor. The worker itself is in `worker_loop`, imported when the command runs."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from baseshift.core.command import Command, ExitCode, run_async, settings_from
from baseshift.core.hookspecs import hookimpl

from ..extras import GRPC, POSTGRES

# ------------------------------------------------------------ the command


def _worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", default="", metavar="A,B",
                   help="labels of this worker: it takes jobs whose `runs-on` labels it has "
                   "all of (jobs without `runs-on` go to any worker)")
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="attempts to execute at once (default: max_parallel)")
    p.add_argument("--grpc", metavar="HOST:PORT",
                   help="also serve the gRPC JobExecutor service on this address")
    p.add_argument("--workflows", metavar="DIR",
                   help="folder of .bsw files and templates (python modules beside them are "
                   "imported from there; default ./workflows)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print warnings and errors only")


def cmd_worker(args: argparse.Namespace) -> int:
    from baseshift.core.console import configure_console

    configure_console(verbose=not args.quiet, timestamps=True)
    settings = settings_from(args, workflows_dir=args.workflows)
    if args.concurrency is not None and args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    if not settings.database_url and not args.grpc:
        print("error: baseshift worker takes attempts from PostgreSQL: set database_url "
              "(BASESHIFT_DATABASE_URL) with store = \"postgres\", or serve gRPC only with "
              "--grpc HOST:PORT", file=sys.stderr)
        return ExitCode.USAGE
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    # The worker executes; it never schedules, so its own engine queues nothing.
    settings = dataclasses.replace(settings, queue="local")
    if settings.database_url:
        POSTGRES.check("baseshift worker")
    if args.grpc:
        GRPC.check("baseshift worker --grpc")
    from .worker_loop import work

    return int(run_async(work(settings, labels, args.concurrency, args.grpc)))


@hookimpl
def register_commands() -> list[Command]:
    return [Command("worker", "execute queued job attempts (PostgreSQL queue) and/or serve "
                    "the gRPC JobExecutor", _worker_args, cmd_worker)]
