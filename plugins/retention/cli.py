"""`baseshift apply-retention`, `baseshift erase RUN_ID` and `baseshift legal-hold RUN_ID
on|off`: the retention API's actions straight on the state store (no server needed).
`baseshift retention --older-than DAYS` (PostgreSQL partitions) is another command."""
from __future__ import annotations

import argparse
import sys

from baseshift.core.command import Command, ExitCode, print_json
from baseshift.core.hookspecs import hookimpl
from baseshift.core.report import format_time
from baseshift.core.retention import KINDS

from ..commands.common import app_for, json_flag, opened_store, run_id_arg
from .service import Applied, apply_policies, documents_of, erase, policy_of, set_hold


async def cmd_apply(args: argparse.Namespace) -> int:
    if not (args.yes or args.dry_run):
        print("error: applying the retention policies deletes data for good; look first "
              "with --dry-run, then add --yes", file=sys.stderr)
        return ExitCode.USAGE
    async with app_for(args) as bs:  # started: copies kept elsewhere (MongoDB) are reached
        done = await apply_policies(bs.store, bs.templates, policy_of(bs.settings),
                                    bs.settings.data_dir, dry_run=args.dry_run,
                                    documents=documents_of(bs))
    if args.json:
        print_json(done.to_json())
    else:
        print(_summary(done))
    return ExitCode.OK


def _summary(done: Applied) -> str:
    if not done.policies:
        return "no retention policy is configured ([plugins.retention]): nothing removed"
    verb = "would remove" if done.dry_run else "removed"
    lines = [f"{format_time(done.applied_at)}: {verb}"]
    for kind in KINDS:
        if kind in done.removed:
            lines.append(f"  {kind}: {done.removed[kind]} (older than "
                         f"{done.policies[kind]:g} days)")
    lines += [f"  {kind}: {n}" for kind, n in sorted(done.removed.items())
              if kind not in KINDS]  # copies elsewhere, such as MongoDB result documents
    lines.append(f"  kept on legal hold: {done.held} run(s)")
    return "\n".join(lines)


async def cmd_erase(args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"error: erasing run {args.run_id} removes its inputs, outputs, logs and "
              "attempts for good; add --yes", file=sys.stderr)
        return ExitCode.USAGE
    async with app_for(args) as bs:
        tombstone = await erase(bs.store, args.run_id, documents_of(bs))
    if args.json:
        print_json(tombstone.to_json())
    else:
        print(f"erased run {tombstone.run_id} of {tombstone.workflow}; its tombstone remains")
    return ExitCode.OK


async def cmd_hold(args: argparse.Namespace) -> int:
    hold = args.state == "on"
    async with opened_store(args) as store:
        await set_hold(store, args.run_id, hold)
    print(f"run {args.run_id} is {'on' if hold else 'off'} legal hold")
    return ExitCode.OK


def _apply_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    p.add_argument("--yes", action="store_true", help="confirm: old data is deleted")
    json_flag(p, "what was removed")


def _erase_args(p: argparse.ArgumentParser) -> None:
    run_id_arg(p)
    p.add_argument("--yes", action="store_true", help="confirm: the run's data is deleted")
    json_flag(p, "the tombstone")


def _hold_args(p: argparse.ArgumentParser) -> None:
    run_id_arg(p)
    p.add_argument("state", choices=("on", "off"), help="put the run on hold, or take it off")


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("apply-retention", "apply the retention policies of [plugins.retention] now",
                _apply_args, cmd_apply),
        Command("erase", "erase a finished run's data (a data subject's request), leaving "
                "a tombstone", _erase_args, cmd_erase),
        Command("legal-hold", "put a run on legal hold (retention and erasure leave it) or "
                "take it off", _hold_args, cmd_hold),
    ]
