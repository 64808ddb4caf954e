"""`baseshift audit verify|list`: check the audit trail's hash chain, or read its newest
entries, straight from the state store (no server needed)."""
from __future__ import annotations

import argparse
import sys

from baseshift.core.audit import AuditQuery, AuditRecord, verify
from baseshift.core.command import Command, ExitCode, print_json
from baseshift.core.hookspecs import hookimpl
from baseshift.core.report import format_time

from ..commands.common import json_flag, opened_store
from .query import MAX_PAGE, audit_page, trail_of


async def cmd_verify(args: argparse.Namespace) -> int:
    async with opened_store(args) as store:
        trail = trail_of(store)
        checked, broken = await verify(trail)
        head = await trail.audit_head()
    if args.json:
        print_json({"intact": broken is None, "entries": checked, "head": head.seq,
                    "broken_at": None if broken is None else broken.seq,
                    "reason": None if broken is None else broken.reason})
    elif broken is None:
        print(f"audit trail intact: {checked} entries, head #{head.seq} {head.hash[:16]}…")
    else:
        print(f"audit trail BROKEN at entry {broken.seq}: {broken.reason}", file=sys.stderr)
    return ExitCode.OK if broken is None else ExitCode.FAILED


async def cmd_list(args: argparse.Namespace) -> int:
    query = AuditQuery(actor=args.actor, action=args.action, resource=args.resource,
                       limit=args.limit)
    async with opened_store(args) as store:
        page = await audit_page(store, query)
    if args.json:
        print_json(page.to_json())
        return ExitCode.OK
    for record in page.records:
        print(_line(record))
    if not page.records:
        print("no audit entries match")
    return ExitCode.OK


def _line(record: AuditRecord) -> str:
    e = record.entry
    detail = " ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
    where = f" from {e.client}" if e.client else ""
    return (f"#{record.seq} {format_time(e.at)} {e.actor} {e.action} {e.resource} "
            f"{e.outcome}{where} {detail}".rstrip())


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to {MAX_PAGE}")
    return int(text)


def _args(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "verify", help="check the hash chain: exit 0 when intact, 1 naming the first "
        "edited, inserted or removed entry",
        description="Recompute every entry's hash and its link to the previous one, and "
        "compare the last with the stored head.")
    json_flag(check, "the verdict")
    check.set_defaults(audit_handler=cmd_verify)
    ls = actions.add_parser("list", help="the newest entries, filtered",
                            description="The newest audit entries, newest first.")
    ls.add_argument("--actor", help="only entries of this actor (a user name, cli:NAME, "
                    "system)")
    ls.add_argument("--action", help="only this action, such as run.start or auth.login")
    ls.add_argument("--resource", help="only this resource (run:ID, user:NAME), or every "
                    "one of a kind (run:)")
    ls.add_argument("--limit", type=_limit, default=50, help="how many (default 50)")
    json_flag(ls, "the entries")
    ls.set_defaults(audit_handler=cmd_list)


async def _run(args: argparse.Namespace) -> int:
    result: int = await args.audit_handler(args)
    return result


@hookimpl
def register_commands() -> list[Command]:
    return [Command("audit", "verify the audit trail's hash chain, or list its entries",
                    _args, _run)]
