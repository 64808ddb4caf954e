"""`baseshift keys rotate|status`: rotate the key-encryption key (re-wrapping every data
key, resumable), or show the keys, their ages and the rotation, straight from the state
store and the key provider (no server needed)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from baseshift.core.command import Command, ExitCode, print_json
from baseshift.core.hookspecs import hookimpl


async def cmd_rotate(args: argparse.Namespace) -> int:
    from ..commands.common import app_for
    from .rotation import rotate
    from .service import build

    app = app_for(args)
    await app.store.open()
    try:
        keys = build(app.settings, app.store)

        def progress(done: int, total: int) -> None:
            print(f"re-wrapped {done}/{total} data keys", file=sys.stderr, flush=True)

        done = await rotate(keys.store, keys.provider,
                            args.batch_size or keys.settings.rotation_batch, progress)
    finally:
        await app.store.close()
    if args.json:
        print_json({"kek_id": done.kek_id, "rewrapped": done.rewrapped,
                    "retired": list(done.retired), "resumed": done.resumed})
    else:
        verb = "finished the rotation" if done.resumed else "rotated"
        print(f"{verb} to key-encryption key {done.kek_id}: {done.rewrapped} data keys "
              f"re-wrapped, retired {', '.join(done.retired) or 'none'}")
    return ExitCode.OK


async def cmd_status(args: argparse.Namespace) -> int:
    from ..commands.common import app_for
    from .rotation import status
    from .service import build

    app = app_for(args)
    await app.store.open()
    try:
        keys = build(app.settings, app.store)
        found = await status(keys.store, keys.provider)
    finally:
        await app.store.close()
    if args.json:
        print_json(found)
    else:
        print(_text(found))
    return ExitCode.OK


def _text(found: dict[str, Any]) -> str:
    lines = [f"provider {found['provider']}: {found['data_keys']} data keys"]
    for kek in found["keks"]:
        mark = " (current)" if kek["current"] else " (retired)" if kek["retired_at"] else ""
        lines.append(f"  {kek['id']}{mark}: {kek['age_days']} days old, "
                     f"{kek['data_keys']} data keys")
    rotation = found["rotation"]
    if rotation is not None:
        lines.append(f"rotation to {rotation['kek_id']} unfinished: {rotation['rewrapped']}/"
                     f"{rotation['total']} data keys re-wrapped (run `baseshift keys rotate`)")
    last = found["last_rotation"]
    if last is not None:
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last["finished_at"]))
        lines.append(f"last rotation finished {at} to {last['kek_id']}")
    return "\n".join(lines)


def _batch(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return int(text)


def _args(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    rot = actions.add_parser(
        "rotate", help="make a new key-encryption key and re-wrap every data key under it",
        description="Make a new key-encryption key, re-wrap every data key under it in "
        "batches (progress on stderr), then retire the older keys. Run it again after an "
        "interruption: it finishes the same rotation.")
    rot.add_argument("--batch-size", type=_batch, default=None,
                     help="data keys per batch (default: [plugins.keys] rotation_batch, 100)")
    rot.add_argument("--json", action="store_true", help="print the result as JSON")
    rot.set_defaults(keys_handler=cmd_rotate)
    st = actions.add_parser("status", help="key-encryption keys, their ages and data keys, "
                            "and the rotation under way")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(keys_handler=cmd_status)


async def _run(args: argparse.Namespace) -> int:
    result: int = await args.keys_handler(args)
    return result


@hookimpl
def register_commands() -> list[Command]:
    return [Command("keys", "rotate the key-encryption key, or show the keys' status",
                    _args, _run)]
