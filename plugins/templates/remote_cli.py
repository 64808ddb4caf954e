"""`baseshift templates … --server URL`: the template store of a server, through its REST
API (`/api/v1/templates`), printed as the local command prints it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from baseshift.core.app.template_files import read_template_file
from baseshift.core.command import ExitCode, print_json
from baseshift.core.diagnostics import render_all
from baseshift.core.templatestore import TemplateDocument, parse_document

if TYPE_CHECKING:
    from baseshift.plugins.client.http import Remote

from .printing import diff_text, list_text, show_text

ORIGIN = ("source", "path", "readOnly")
"""Fields the API adds to a document: where a listed template comes from."""


def _path(*parts: str) -> str:
    return "/api/v1/templates" + "".join("/" + quote(p, safe="") for p in parts)


def document(data: dict[str, Any]) -> TemplateDocument:
    return parse_document({k: v for k, v in data.items() if k not in ORIGIN})


def run(remote: Remote, args: argparse.Namespace) -> int:
    handler = {"list": _list, "show": _show, "publish": _publish, "delete": _delete,
               "diff": _diff}[args.action]
    return handler(remote, args)


def _list(remote: Remote, args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("name", args.name), ("type", args.type)) if v}
    listed = remote.json("GET", _path(), params=params)["templates"]
    if args.json:
        print_json(listed)
    else:
        print(list_text([document(d) for d in listed]))
    return ExitCode.OK


def _show(remote: Remote, args: argparse.Namespace) -> int:
    if args.version:
        found = remote.json("GET", _path(args.name, args.version))
    else:
        versions = remote.json("GET", _path(args.name))
        found = next(v for v in versions["versions"] if v["version"] == versions["latest"])
    if args.json:
        print_json(found)
    else:
        print(show_text(document(found)))
    return ExitCode.OK


def _publish(remote: Remote, args: argparse.Namespace) -> int:
    """The file's documents are read here (YAML, positions for errors); the server checks
    their steps against its own executors."""
    path = Path(args.file)
    docs, problems = read_template_file(path, need_version=args.bump is None)
    if problems:
        print(render_all(problems, {str(path): path.read_text(encoding="utf-8")}),
              file=sys.stderr)
        return ExitCode.FAILED
    stored = [remote.json("POST", _path(), body=_publish_body(doc, args.bump))
              for doc, _ in docs]
    if args.json:
        print_json(stored)
    else:
        print("\n".join(f"published {d['templateId']}@{d['version']}" for d in stored))
    return ExitCode.OK


def _publish_body(doc: TemplateDocument, bump: str | None) -> dict[str, Any]:
    body = doc.to_json()
    for key in ("name", "created_at"):
        body.pop(key)
    if bump is not None:
        body["version"] = None
        body["bump"] = bump
    return body


def _delete(remote: Remote, args: argparse.Namespace) -> int:
    remote.call("DELETE", _path(args.name, args.version))
    print(f"deleted {args.name}@{args.version}")
    return ExitCode.OK


def _diff(remote: Remote, args: argparse.Namespace) -> int:
    diff = remote.json("GET", _path(args.name, "diff"),
                       params={"from": args.old, "to": args.new})
    if args.json:
        print_json(diff)
    else:
        print(diff_text(diff))
    return ExitCode.OK
