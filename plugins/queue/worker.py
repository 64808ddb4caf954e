"""`baseshift worker`: executes the attempts servers queue in PostgreSQL, and/or serves the
gRPC JobExecutor. The worker itself is in `worker_loop`, imported when the command runs."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from baseshift.core.app.logs import log_format_arg
from baseshift.core.command import Command, ExitCode, run_async, settings_from
from baseshift.core.errors import ConfigError
from baseshift.core.hookspecs import hookimpl

from ..extras import GRPC, POSTGRES

if TYPE_CHECKING:
    from baseshift.core.settings import Settings

# ------------------------------------------------------------ the command


def _worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", default="", metavar="A,B",
                   help="labels of this worker: it takes jobs whose `runs-on` labels it has "
                   "all of (jobs without `runs-on` go to any worker)")
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="attempts to execute at once (default: max_parallel)")
    p.add_argument("--grpc", metavar="HOST:PORT",
                   help="also serve the gRPC JobExecutor service on this address")
    p.add_argument("--grpc-certfile", metavar="PEM",
                   help="serve gRPC over TLS with this certificate chain (default: "
                   "[plugins.executor_grpc] certfile)")
    p.add_argument("--grpc-keyfile", metavar="PEM",
                   help="the private key of --grpc-certfile (default: [plugins.executor_grpc] "
                   "keyfile); calls need the token of BASESHIFT_GRPC_TOKEN or "
                   "[plugins.executor_grpc] token_file when one is set")
    p.add_argument("--grpc-insecure", action="store_true",
                   help="serve gRPC beyond loopback without TLS and a token (anyone "
                   "reaching the port can then run any executor)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="N",
                   help="serve this worker's Prometheus metrics (its attempts) on "
                   "http://127.0.0.1:N/metrics")
    p.add_argument("--workflows", metavar="DIR",
                   help="folder of .bsw files and templates (python modules beside them are "
                   "imported from there; default ./workflows)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print warnings and errors only")
    log_format_arg(p)


def cmd_worker(args: argparse.Namespace) -> int:
    from baseshift.core.app.logs import configure_logging, log_format

    configure_logging(log_format(args.log_format), verbose=not args.quiet, timestamps=True)
    settings = settings_from(args, workflows_dir=args.workflows)
    if args.concurrency is not None and args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    if not settings.database_url and not args.grpc:
        print("error: baseshift worker takes attempts from PostgreSQL: set database_url "
              "(BASESHIFT_DATABASE_URL) with store = \"postgres\", or serve gRPC only with "
              "--grpc HOST:PORT", file=sys.stderr)
        return ExitCode.USAGE
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        print("error: --metrics-port must be a port number (1-65535)", file=sys.stderr)
        return ExitCode.USAGE
    if args.metrics_port is not None and "metrics" in settings.disabled_plugins:
        print("error: --metrics-port needs the metrics plugin, which "
              "BASESHIFT_DISABLE_PLUGINS turns off", file=sys.stderr)
        return ExitCode.USAGE
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    # The worker executes; it never schedules, so its own engine queues nothing.
    settings = dataclasses.replace(settings, queue="local")
    if args.metrics_port is not None:  # the metrics plugin serves it (`port` option)
        table = {**(settings.extra.get("metrics") or {}), "port": args.metrics_port}
        settings = dataclasses.replace(settings, extra={**settings.extra, "metrics": table})
    if settings.database_url:
        POSTGRES.check("baseshift worker")
    if args.grpc:
        GRPC.check("baseshift worker --grpc")
        settings = _grpc_security(settings, args)
    from .worker_loop import work

    return int(run_async(work(settings, labels, args.concurrency, args.grpc)))


def _grpc_security(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with the TLS flags in, once the files are read and the address is safe
    to serve that way: a ConfigError (a usage error) before anything is bound, else."""
    from ..grpc.security import ServerSecurity, with_server_files

    settings = with_server_files(settings, args.grpc_certfile, args.grpc_keyfile)
    missing = ServerSecurity.from_settings(settings).lacks(args.grpc)
    if missing and not args.grpc_insecure:
        raise ConfigError(f"refusing to serve gRPC on {args.grpc} without {missing}: other "
                          "machines can reach it, and anyone reaching it could run any "
                          "executor (shell included)",
                          hint="give --grpc-certfile, --grpc-keyfile and a token "
                          "(BASESHIFT_GRPC_TOKEN or [plugins.executor_grpc] token_file), "
                          "serve 127.0.0.1, or accept the risk with --grpc-insecure")
    if missing:
        print(f"warning: serving gRPC on {args.grpc} without {missing} (--grpc-insecure): "
              "anyone reaching it can run any executor (shell included)", file=sys.stderr,
              flush=True)
    return settings


@hookimpl
def register_commands() -> list[Command]:
    return [Command("worker", "execute queued job attempts (PostgreSQL queue) and/or serve "
                    "the gRPC JobExecutor", _worker_args, cmd_worker)]
