"""`baseshift users …` and `baseshift tokens …`: accounts and API tokens, administered on
the server's own store (the data dir, or the configured database), as Argo CD's
`argocd account` or Jenkins' CLI do."""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from baseshift.core.access import Grant
from baseshift.core.command import Command, ExitCode, print_json, settings_from
from baseshift.core.errors import ConfigError, InputError
from baseshift.core.hookspecs import hookimpl

from .state import AUTH, AuthState

Action = Callable[[AuthState, argparse.Namespace], Awaitable[int]]


@asynccontextmanager
async def auth_state(args: argparse.Namespace) -> AsyncIterator[AuthState]:
    from baseshift.core.app.application import BaseShift

    async with BaseShift(settings_from(args)) as bs:
        state = bs.stash.get(AUTH)
        if state is None:
            raise ConfigError(f"the state store '{bs.settings.store}' keeps no accounts")
        yield state


def grant_of(text: str) -> Grant:
    """`ROLE` or `ROLE:PATTERN` (a role on the workflows whose names match PATTERN)."""
    role, _, scope = text.partition(":")
    if not role:
        raise argparse.ArgumentTypeError(f"{text!r} is not ROLE or ROLE:WORKFLOW-PATTERN")
    return Grant(role, scope or "*")


def _read_password(args: argparse.Namespace) -> str | None:
    if not getattr(args, "password_stdin", False):
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InputError("no password on standard input")
    return password


async def users_add(state: AuthState, args: argparse.Namespace) -> int:
    password = _read_password(args)
    user, uri = await state.accounts.add_user(args.name, password, args.role,
                                              temporary=args.temporary, totp=args.totp)
    if args.json:
        print_json({"id": user.id, "name": user.name,
                    "roles": [g.text for g in args.role], "totp_uri": uri,
                    "must_change_password": user.must_change_password})
        return ExitCode.OK
    print(f"created user {user.name} ({', '.join(g.text for g in args.role)})")
    if uri:
        print(f"TOTP provisioning URI (add it to an authenticator app): {uri}")
    if password is None:
        print("no password: the user signs in with API tokens or an identity provider")
    return ExitCode.OK


async def users_list(state: AuthState, args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for user in await state.accounts.store.list_users():
        grants = await state.accounts.store.grants_of(user.id)
        rows.append({"name": user.name, "roles": [g.text for g in grants],
                     "disabled": user.disabled, "mfa": user.totp_confirmed,
                     "must_change_password": user.must_change_password,
                     "source": user.source})
    def line(row: dict[str, Any]) -> str:
        flags = [f for f, on in (("disabled", row["disabled"]), ("mfa", row["mfa"]),
                                 ("password change due", row["must_change_password"])) if on]
        return f"{row['name']:<24} {','.join(row['roles']) or '-':<30} {' '.join(flags)}"

    return _show(args, rows, line,
                 "no users yet: `baseshift serve` creates 'admin' on its first start")


async def users_disable(state: AuthState, args: argparse.Namespace) -> int:
    await state.accounts.set_disabled(args.name, not args.enable)
    print(f"{args.name}: {'enabled' if args.enable else 'disabled, sessions ended'}")
    return ExitCode.OK


async def users_roles(state: AuthState, args: argparse.Namespace) -> int:
    if args.set is not None:
        grants = await state.accounts.set_grants(args.name, args.set)
    else:
        grants = await state.accounts.store.grants_of((await state.accounts.user(args.name)).id)
    print(f"{args.name}: {', '.join(g.text for g in grants) or 'no roles'}")
    return ExitCode.OK


async def users_reset_mfa(state: AuthState, args: argparse.Namespace) -> int:
    await state.accounts.reset_mfa(args.name)
    print(f"{args.name}: TOTP and recovery codes removed; the next sign-in enrols anew")
    return ExitCode.OK


async def users_password(state: AuthState, args: argparse.Namespace) -> int:
    password = _read_password(args)
    if password is None:
        raise InputError("give the new password on standard input with --password-stdin")
    await state.accounts.set_password(args.name, password, temporary=args.temporary)
    print(f"{args.name}: password set" + (" (to be changed at the next sign-in)"
                                          if args.temporary else ""))
    return ExitCode.OK


async def tokens_create(state: AuthState, args: argparse.Namespace) -> int:
    expires = None if args.expires_in_days == 0 else args.expires_in_days * 86400
    record, secret = await state.logins.create_api_token(args.user, args.name, args.role,
                                                         expires)
    if args.json:
        print_json({"id": record.id, "name": record.name, "token": secret,
                    "expires_at": record.expires_at})
    else:
        print(f"API token {record.name} ({record.id}) for {args.user}; it is shown only "
              f"this once:\n{secret}")
    return ExitCode.OK


async def tokens_list(state: AuthState, args: argparse.Namespace) -> int:
    store = state.accounts.store
    users = {u.id: u.name for u in await store.list_users()}
    owner = None
    if args.user:
        owner = (await state.accounts.user(args.user)).id
    rows: list[dict[str, Any]] = [{"id": t.id, "name": t.name, "user": users.get(t.user_id, "?"),
             "roles": [g.text for g in t.grants], "created_at": t.created_at,
             "expires_at": t.expires_at, "revoked": t.revoked_at is not None}
            for t in await store.list_api_tokens(owner)]
    now = time.time()

    def line(row: dict[str, Any]) -> str:
        state_text = ("revoked" if row["revoked"] else "expired"
                      if row["expires_at"] is not None and row["expires_at"] <= now
                      else "active")
        return (f"{row['id']}  {row['user']:<16} {row['name']:<20} "
                f"{','.join(row['roles']):<20} {state_text}")

    return _show(args, rows, line, "no API tokens")


async def tokens_revoke(state: AuthState, args: argparse.Namespace) -> int:
    await state.logins.revoke_api_token(args.token_id)
    print(f"revoked {args.token_id}")
    return ExitCode.OK


async def keys_rotate(state: AuthState, args: argparse.Namespace) -> int:
    kid = await state.logins.tokens.rotate()
    print(f"signing with the new key {kid}; tokens signed by the old one stay valid until "
          "they expire")
    return ExitCode.OK


async def keys_list(state: AuthState, args: argparse.Namespace) -> int:
    keys = await state.accounts.store.signing_keys()
    rows = [{"kid": k.kid, "algorithm": k.algorithm, "created_at": k.created_at,
             "retired_at": k.retired_at} for k in keys]
    return _show(args, rows, lambda row: f"{row['kid']}  {row['algorithm']:<6} "
                 f"{'signing' if row['retired_at'] is None else 'retired'}",
                 "no signing key yet: the first sign-in makes one")


def _show(args: argparse.Namespace, rows: list[dict[str, Any]],
          line: Callable[[dict[str, Any]], str], empty: str) -> int:
    """A listing: JSON with --json, else a line per row (or what none means)."""
    if args.json:
        print_json(rows)
    else:
        print("\n".join(map(line, rows)) if rows else empty)
    return ExitCode.OK


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def _actions(p: argparse.ArgumentParser) -> Any:
    """The actions of a command, each also taking the common --data-dir and --store after
    its name (`baseshift users add ann --data-dir d`), as every command does."""
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                        help="where the server's state is (as before the action)")
    common.add_argument("--store", metavar="NAME", default=argparse.SUPPRESS,
                        help="the state store backend (as before the action)")
    return lambda name, **kw: sub.add_parser(name, parents=[common], **kw)


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the user name")


def _roles(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--role", action="append", type=grant_of, required=required, default=None,
                   metavar="ROLE[:PATTERN]", help="a role (admin, operator, author, viewer "
                   "or a custom one), optionally on the workflows matching PATTERN; repeat "
                   "for several")


def _users_args(p: argparse.ArgumentParser) -> None:
    action = _actions(p)
    add = action("add", help="create a user")
    _name(add)
    _roles(add, required=True)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    add.add_argument("--temporary", action="store_true",
                     help="the password must be changed at the first sign-in")
    add.add_argument("--totp", action="store_true",
                     help="enrol TOTP now and print its provisioning URI")
    _json(add)
    add.set_defaults(act=users_add)
    listing = action("list", help="list users, their roles and MFA")
    _json(listing)
    listing.set_defaults(act=users_list)
    disable = action("disable", help="disable a user and end their sessions")
    _name(disable)
    disable.add_argument("--enable", action="store_true", help="enable the user again")
    disable.set_defaults(act=users_disable)
    roles = action("roles", help="show a user's roles, or replace them with --set")
    _name(roles)
    roles.add_argument("--set", action="append", type=grant_of, metavar="ROLE[:PATTERN]",
                       help="the roles the user holds from now on; repeat for several")
    roles.set_defaults(act=users_roles)
    reset = action("reset-mfa", help="remove a user's TOTP and recovery codes")
    _name(reset)
    reset.set_defaults(act=users_reset_mfa)
    password = action("password", help="set a user's password")
    _name(password)
    password.add_argument("--password-stdin", action="store_true",
                          help="read the password from the first line of standard input")
    password.add_argument("--temporary", action="store_true",
                          help="the password must be changed at the next sign-in")
    password.set_defaults(act=users_password)


def _tokens_args(p: argparse.ArgumentParser) -> None:
    action = _actions(p)
    create = action("create", help="make an API token (shown once)")
    create.add_argument("--user", required=True, help="the user the token acts for")
    create.add_argument("--name", required=True, help="what the token is for, e.g. ci")
    _roles(create, required=True)
    create.add_argument("--expires-in-days", type=float, default=90.0, metavar="DAYS",
                        help="lifetime in days (default 90; 0: never expires)")
    _json(create)
    create.set_defaults(act=tokens_create)
    listing = action("list", help="list API tokens (never their secrets)")
    listing.add_argument("--user", help="only this user's tokens")
    _json(listing)
    listing.set_defaults(act=tokens_list)
    revoke = action("revoke", help="revoke an API token")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id `tokens list` shows")
    revoke.set_defaults(act=tokens_revoke)


def _keys_args(p: argparse.ArgumentParser) -> None:
    action = _actions(p)
    action("rotate", help="sign new access tokens with a new key").set_defaults(act=keys_rotate)
    listing = action("list", help="the signing keys (never their private halves)")
    _json(listing)
    listing.set_defaults(act=keys_list)


async def run_action(args: argparse.Namespace) -> int:
    act: Action = args.act
    async with auth_state(args) as state:
        return await act(state, args)


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("users", "manage user accounts: add, list, disable, roles, reset-mfa, "
                "password", _users_args, run_action),
        Command("tokens", "manage API tokens for automation: create, list, revoke",
                _tokens_args, run_action),
        Command("signing-keys", "rotate or list the keys that sign access tokens",
                _keys_args, run_action),
    ]

