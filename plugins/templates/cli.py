"""`baseshift templates list|show|publish|delete|diff`: the job template store from a shell."""
from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from baseshift.core.app.application import BaseShift
from baseshift.core.app.template_files import read_template_file
from baseshift.core.command import Command, ExitCode, existing_file, print_json
from baseshift.core.diagnostics import render_all
from baseshift.core.errors import NotFound
from baseshift.core.hookspecs import hookimpl
from baseshift.core.protocols import StateStore
from baseshift.core.settings import Settings
from baseshift.core.templatestore import TemplateStore, not_found
from baseshift.plugins.client.remote import remote_for, server_options

from . import audited, remote_cli
from .common import diff_json, template_store
from .printing import diff_text, list_text, show_text

HELP = "list, show, publish, delete and compare job templates in the template store"


def _store_options(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a sub-parser's default would overwrite a value given before the action.
    p.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="where the store lives (env BASESHIFT_DATA_DIR; default ./.baseshift)")
    p.add_argument("--templates", metavar="NAME", default=argparse.SUPPRESS,
                   help="template store backend: sqlite (default), memory, postgres or mongo "
                   "(env BASESHIFT_TEMPLATES)")


def _json_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--templates", metavar="NAME", help=argparse.SUPPRESS)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="list published templates (every version)")
    ls.add_argument("--name", help="only this template")
    ls.add_argument("--type", help="only templates with a step of this executor type")
    _json_flag(ls, "the template documents")
    show = actions.add_parser("show", help="show one template version (default: the latest)")
    show.add_argument("name", metavar="NAME")
    show.add_argument("version", metavar="VERSION", nargs="?",
                      help="an exact version or a range like ^1.2")
    _json_flag(show, "the template document")
    publish = actions.add_parser("publish", help="publish the templates of a YAML file")
    publish.add_argument("file", metavar="FILE", type=existing_file,
                         help="a .yaml file of template documents")
    publish.add_argument("--bump", choices=("major", "minor", "patch"),
                         help="derive the version from the latest instead of the file's")
    _json_flag(publish, "the published documents")
    delete = actions.add_parser("delete", help="delete one published version")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("version", metavar="VERSION")
    diff = actions.add_parser("diff", help="compare two versions and explain what would "
                              "break their callers")
    diff.add_argument("name", metavar="NAME")
    diff.add_argument("old", metavar="A", help="the earlier version")
    diff.add_argument("new", metavar="B", help="the later version")
    _json_flag(diff, "the differences and reasons")
    for sub in (ls, show, publish, delete, diff):
        _store_options(sub)
        server_options(sub)


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=getattr(args, "data_dir", None),
                             store=getattr(args, "store", None),
                             templates=getattr(args, "templates", None))


@asynccontextmanager
async def opened(args: argparse.Namespace) -> AsyncIterator[tuple[BaseShift, TemplateStore]]:
    """The template store alone, opened (no engine, no state store needed)."""
    bs = BaseShift(settings_of(args))
    store = template_store(bs)
    await store.open()
    try:
        yield bs, store
    finally:
        await store.close()


@asynccontextmanager
async def _audit_trail(bs: BaseShift) -> AsyncIterator[StateStore]:
    """The state store, opened: its audit trail records what the command changes."""
    await bs.store.open()
    try:
        yield bs.store
    finally:
        await bs.store.close()


def cmd_templates(args: argparse.Namespace) -> Coroutine[Any, Any, int] | int:
    client = remote_for(args)
    if client is None:
        return _here(args)
    with client:
        return remote_cli.run(client, args)


async def _here(args: argparse.Namespace) -> int:
    handler = {"list": _list, "show": _show, "publish": _publish, "delete": _delete,
               "diff": _diff}[args.action]
    async with opened(args) as (bs, store):
        return await handler(args, bs, store)


async def _list(args: argparse.Namespace, bs: BaseShift, store: TemplateStore) -> int:
    docs = await store.list(args.name, type=args.type)
    if args.json:
        print_json([d.to_json() for d in docs])
    else:
        print(list_text(docs))
    return ExitCode.OK


async def _show(args: argparse.Namespace, bs: BaseShift, store: TemplateStore) -> int:
    doc = await store.get(args.name, args.version)
    if doc is None:
        raise not_found(args.name, args.version)
    if args.json:
        print_json(doc.to_json())
    else:
        print(show_text(doc))
    return ExitCode.OK


async def _publish(args: argparse.Namespace, bs: BaseShift, store: TemplateStore) -> int:
    from baseshift.dsl import parse_expression

    path = Path(args.file)
    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    docs, problems = read_template_file(path, bs.executor_classes, parse=parse_expression,
                                        need_version=args.bump is None)
    if problems:
        print(render_all(problems, {str(path): path.read_text(encoding="utf-8")}),
              file=sys.stderr)
        return ExitCode.FAILED
    async with _audit_trail(bs) as state:
        stored = [await audited.publish(state, store, doc, args.bump) for doc, _ in docs]
    if args.json:
        print_json([d.to_json() for d in stored])
    else:
        print("\n".join(f"published {doc.ref}" for doc in stored))
    return ExitCode.OK


async def _delete(args: argparse.Namespace, bs: BaseShift, store: TemplateStore) -> int:
    async with _audit_trail(bs) as state:
        await audited.delete(state, store, args.name, args.version)
    print(f"deleted {args.name}@{args.version}")
    return ExitCode.OK


async def _diff(args: argparse.Namespace, bs: BaseShift, store: TemplateStore) -> int:
    found = [await store.get(args.name, v) for v in (args.old, args.new)]
    for doc, version in zip(found, (args.old, args.new), strict=True):
        if doc is None:
            raise not_found(args.name, version)
    old, new = found
    assert old is not None and new is not None
    diff = diff_json(old, new)
    if args.json:
        print_json(diff)
    else:
        print(diff_text(diff))
    return ExitCode.OK


@hookimpl
def register_commands() -> list[Command]:
    return [Command("templates", HELP, configure, cmd_templates)]
