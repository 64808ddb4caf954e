"""`baseshift login URL` and `baseshift logout [URL]`: signing in to a server from a shell
(as `argo login` or `prefect cloud login` do); the token is kept in the user's
configuration folder for the commands given `--server`."""
from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from baseshift.core.command import Command, ExitCode, print_json
from baseshift.core.errors import BaseShiftError, InputError, Unauthorized
from baseshift.core.hookspecs import hookimpl

from .credentials import API_TOKEN, SESSION, CredentialFile, Login, server_url

if TYPE_CHECKING:
    from .http import Remote

LOGIN_HELP = "sign in to a server; the commands given --server then use it"
LOGOUT_HELP = "sign out of a server (default: the default one) and forget its token"


def _login_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", help="the server's address, e.g. https://bs.example")
    p.add_argument("--username", "-u", help="the user to sign in as (default: asked)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p.add_argument("--totp", metavar="CODE",
                   help="the code of your authenticator app (or a recovery code); asked "
                   "when the account needs one and a terminal is there")
    p.add_argument("--token-stdin", action="store_true",
                   help="sign in with an API token (`bsat_…`, from `baseshift tokens "
                   "create`) read from standard input, instead of a password")
    p.add_argument("--ca-file", metavar="PEM",
                   help="trust the server certificates this authority signed (kept for "
                   "later commands)")
    p.add_argument("--json", action="store_true", help="print who is signed in as JSON")


def cmd_login(args: argparse.Namespace) -> int:
    url = server_url(args.url)
    if args.token_stdin and (args.password_stdin or args.totp or args.username):
        raise InputError("--token-stdin signs in with a token: give no user, password or "
                         "TOTP code")
    from .http import Remote  # here: every command line loads this module, few sign in

    file = CredentialFile()
    credentials = file.load()  # refuses a file others may read before anything is sent
    with Remote(url, None, file, ca_file=args.ca_file) as remote:
        remote.signing_in = True
        login = _token_login(remote, args) if args.token_stdin else _password_login(remote, args)
        remote.login = login
        actor = remote.json("GET", "/api/v1/auth/user")
        login = Login(login.kind, str(actor.get("name", "")), login.access_token,
                      login.refresh_token, login.expires_at, args.ca_file)
        file.save(credentials.with_login(url, login))
    if args.json:
        print_json({"server": url, "default": True, **actor})
    else:
        print(f"signed in to {url} as {actor.get('name')} ({roles_text(actor)}); "
              "it is now the default server (--server default)")
    return ExitCode.OK


def roles_text(actor: dict[str, Any]) -> str:
    roles = [g["role"] if g.get("scope", "*") == "*" else f"{g['role']}:{g['scope']}"
             for g in actor.get("roles", []) if isinstance(g, dict) and "role" in g]
    return "roles: " + ", ".join(roles) if roles else "no roles"


def _token_login(remote: Remote, args: argparse.Namespace) -> Login:
    token = sys.stdin.readline().strip()
    if not token:
        raise InputError("no API token on standard input")
    return Login(API_TOKEN, "", token, ca_file=args.ca_file)


def _password_login(remote: Remote, args: argparse.Namespace) -> Login:
    username = args.username or _ask("Username: ")
    password = _password(args)
    body = {"username": username, "password": password}
    if args.totp:
        body["totp_token"] = args.totp
    from .http import problem_error

    response = remote.anonymous("POST", "/api/v1/auth/login", body)
    if response.status_code == 401 and not args.totp and _wants_totp(response):
        if not sys.stdin.isatty():
            raise Unauthorized(f"the account {username} needs a TOTP code",
                               hint="give --totp CODE (the 6 digits of your authenticator "
                                    "app, or a recovery code)")
        body["totp_token"] = _ask("TOTP code: ")
        response = remote.anonymous("POST", "/api/v1/auth/login", body)
    if response.status_code >= 400:
        raise _login_error(problem_error(response, remote.url, signing_in=True))
    pair = response.json()
    return Login(SESSION, username, pair["access_token"], pair["refresh_token"],
                 time.time() + float(pair["expires_in"]), args.ca_file)


def _wants_totp(response: Any) -> bool:
    try:
        return bool(response.json().get("field") == "totp_token")
    except (ValueError, AttributeError):
        return False


def _login_error(error: BaseShiftError) -> BaseShiftError:
    if isinstance(error, Unauthorized) and error.details.get("field") == "totp_token":
        return Unauthorized(error.message, hint="check the code of your authenticator app "
                            "(each code is accepted once), or give a recovery code")
    return error


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InputError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask the password on",
                         hint="pipe it in with --password-stdin, or sign in with an API "
                              "token and --token-stdin")
    import getpass

    return getpass.getpass("Password: ")


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise InputError(f"no terminal to ask on ({prompt.rstrip(': ')})",
                         hint="give it as an option: --username, --totp")
    print(prompt, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip()
    if not answer:
        raise InputError(f"no {prompt.rstrip(': ').lower()} given")
    return answer


def _logout_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", nargs="?",
                   help="the server to sign out of (default: the default server)")


def cmd_logout(args: argparse.Namespace) -> int:
    file = CredentialFile()
    credentials = file.load()
    url = server_url(args.url) if args.url else credentials.default
    login = credentials.servers.get(url) if url else None
    if url is None or login is None:
        raise InputError(f"not signed in to {url or 'any server'}",
                         hint="`baseshift login URL` signs in")
    note = _revoke(url, login, file)
    file.save(credentials.without(url))
    print(f"signed out of {url}" + (f"; {note}" if note else ""))
    return ExitCode.OK


def _revoke(url: str, login: Login, file: CredentialFile) -> str | None:
    """End the session on the server; what the user should know when it could not be."""
    from .http import Remote, problem_error

    if login.kind != SESSION or login.refresh_token is None:
        return "the API token stays valid until it expires or `baseshift tokens revoke` "\
               "revokes it"
    try:
        with Remote(url, login, file) as remote:
            response = remote.anonymous("POST", "/api/v1/auth/logout",
                                        {"refresh_token": login.refresh_token})
    except BaseShiftError as exc:
        return f"the server did not confirm the end of the session ({exc.message})"
    if response.status_code >= 400:
        error = problem_error(response, url)
        return f"the server did not confirm the end of the session ({error.message})"
    return None


@hookimpl
def register_commands() -> list[Command]:
    return [Command("login", LOGIN_HELP, _login_args, cmd_login),
            Command("logout", LOGOUT_HELP, _logout_args, cmd_logout)]
