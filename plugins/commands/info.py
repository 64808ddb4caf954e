"""`baseshift config` and `plugins`: what this installation is configured with and runs."""
from __future__ import annotations

import argparse
import json

from baseshift.core.command import Command, ExitCode, print_json, settings_from
from baseshift.core.hookspecs import hookimpl

from .common import app_for, json_flag


def cmd_config(args: argparse.Namespace) -> int:
    """`baseshift config show`: the effective settings, secrets masked."""
    import dataclasses
    import os

    from baseshift.core.config import config_path, masked

    settings = settings_from(args)
    path = config_path(os.environ)
    shown = masked({f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})
    if args.json:
        print_json({"config_file": str(path) if path else None, "settings": shown})
        return ExitCode.OK
    print(f"# configuration file: {path or 'none (defaults, environment and flags)'}")
    for key, value in shown.items():
        print(f"{key} = {json.dumps(value)}")
    return ExitCode.OK


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["show"], help="show: print the effective settings")
    json_flag(p, "the settings")


def cmd_plugins(args: argparse.Namespace) -> int:
    from baseshift.core.plugins import describe_plugins

    bs = app_for(args)
    infos = describe_plugins(bs.pm)
    if args.json:
        print_json([{"name": i.name, "module": i.module, "distribution": i.distribution,
                     "version": i.version, "hooks": list(i.hooks)} for i in infos])
        return ExitCode.OK
    for info in infos:
        origin = f"{info.distribution} {info.version}" if info.distribution else "builtin"
        print(f"{info.name}  ({origin})\n    hooks: {', '.join(info.hooks) or '-'}")
    print(f"executors: {', '.join(sorted(bs.executor_classes))}")
    return ExitCode.OK


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("config", "show the effective configuration (file, environment, flags), "
                "secrets masked", _config_args, cmd_config),
        Command("plugins", "list loaded plugins and the hooks each implements",
                lambda p: json_flag(p, "the plugins"), cmd_plugins),
    ]
