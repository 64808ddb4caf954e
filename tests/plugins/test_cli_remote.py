"""`baseshift login`, `logout`, and `runs`/`show`/`run`/`cancel`/`retry`/`templates` with
`--server`, black-box: each command a subprocess, against a real server (Hypercorn on a
loopback port), with the credentials file in a private configuration folder. No token ever
reaches the output."""
from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from baseshift.core.access import Grant
from baseshift.core.settings import Settings
from baseshift.plugins.auth.state import AUTH
from tests.auth_support import NO_FIRST_ADMIN, api_token_for
from tests.conftest import CliResult, free_port
from tests.plugins.served import Served, served

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple 42"
EXAMPLE = Path(__file__).resolve().parents[2] / "workflows" / "greeting.template.yaml"
WORKFLOWS = {
    "hello.bsw": 'workflow hello {\n  version "1.0.0"\n  input { name: string = "world" }\n'
                 '  job greet uses shell { with { command: "echo hi ${input.name}" } }\n}\n',
    "slow.bsw": 'workflow slow {\n  version "1.0.0"\n'
                '  job wait uses shell { with { command: "sleep 600" } }\n}\n',
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, text in WORKFLOWS.items():
        (folder / name).write_text(text)
    flag = tmp_path / "flag"
    (folder / "flaky.bsw").write_text(
        'workflow flaky {\n  version "1.0.0"\n'
        f'  job check uses shell {{ with {{ command: "test -f {flag}" }} }}\n}}\n')
    settings = Settings(load_entrypoints=False, store="memory", templates="memory",
                        data_dir=tmp_path / "data", workflows_dir=folder, extra=NO_FIRST_ADMIN)
    with served(settings) as srv:
        accounts = srv.bs.stash[AUTH].accounts
        srv.call(accounts.add_user("olga", PASSWORD, [Grant("operator")]))
        srv.call(accounts.add_user("vic", PASSWORD, [Grant("viewer")]))
        _, uri = srv.call(accounts.add_user("ada", PASSWORD, [Grant("admin")], totp=True))
        srv.notes["totp"] = pyotp.parse_uri(uri)
        yield srv


@pytest.fixture
def cli(run_cli: Any, tmp_path: Path) -> Callable[..., CliResult]:
    """`baseshift ARGS` with a private configuration folder and home."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path / "home"),
           "BASESHIFT_SERVER": ""}

    def call(*args: str, input: str | None = None, **extra: str) -> CliResult:
        return run_cli(*args, input=input, env={**env, **extra})

    return call


def credentials_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "baseshift" / "credentials.json"


def stored(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(credentials_file(tmp_path).read_text())
    return data


def no_secret(result: CliResult, *secrets: str) -> CliResult:
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr
    return result


def login(cli: Callable[..., CliResult], server: Served, user: str = "olga") -> CliResult:
    result = cli("login", server.url, "--username", user, "--password-stdin",
                 input=PASSWORD + "\n")
    assert result.exit_code == 0, result.stderr
    return result


def test_login_with_a_password_stores_a_private_session(cli: Any, server: Served,
                                                         tmp_path: Path) -> None:
    result = no_secret(login(cli, server), PASSWORD)
    assert result.stdout == (f"signed in to {server.url} as olga (roles: operator); it is now "
                             "the default server (--server default)\n")
    path = credentials_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    entry = stored(tmp_path)["servers"][server.url]
    assert entry["kind"] == "session" and entry["user"] == "olga"
    assert stored(tmp_path)["default"] == server.url
    no_secret(result, entry["access_token"], entry["refresh_token"])

    who = cli("login", server.url, "-u", "olga", "--password-stdin", "--json",
              input=PASSWORD + "\n")
    actor = json.loads(who.stdout)
    assert actor["name"] == "olga" and "runs:start" in actor["permissions"]


def test_login_asks_for_the_totp_code_the_account_needs(cli: Any, server: Served,
                                                         tmp_path: Path) -> None:
    missing = cli("login", server.url, "-u", "ada", "--password-stdin", input=PASSWORD + "\n")
    assert missing.exit_code == 1
    assert "the account ada needs a TOTP code" in missing.stderr and "--totp" in missing.stderr
    assert not credentials_file(tmp_path).exists()

    wrong = cli("login", server.url, "-u", "ada", "--password-stdin", "--totp", "000000",
                input=PASSWORD + "\n")
    assert wrong.exit_code == 1 and "wrong or missing TOTP code" in wrong.stderr

    code = server.notes["totp"].now()
    result = cli("login", server.url, "-u", "ada", "--password-stdin", "--totp", code,
                 input=PASSWORD + "\n")
    assert result.exit_code == 0, result.stderr
    assert "as ada (roles: admin)" in result.stdout


def test_a_wrong_password_is_refused_and_nothing_is_stored(cli: Any, server: Served,
                                                           tmp_path: Path) -> None:
    result = cli("login", server.url, "-u", "olga", "--password-stdin", input="nope\n")
    assert result.exit_code == 1 and "error: wrong user name or password" in result.stderr
    assert not credentials_file(tmp_path).exists()


def test_login_with_an_api_token(cli: Any, server: Served, tmp_path: Path) -> None:
    token = server.call(api_token_for(server.bs, "viewer"))
    result = no_secret(cli("login", server.url, "--token-stdin", input=token + "\n"), token)
    assert result.exit_code == 0, result.stderr
    assert "as viewer-tester/tests (roles: viewer)" in result.stdout
    assert stored(tmp_path)["servers"][server.url]["kind"] == "api-token"
    listed = no_secret(cli("runs", "--server", "default"), token)
    assert (listed.exit_code, listed.stdout) == (0, "no runs yet\n"), listed.stderr

    bad = cli("login", server.url, "--token-stdin", input="bsat_not-a-token\n")
    assert bad.exit_code == 1 and "unknown API token" in bad.stderr
    logout = cli("logout")
    assert logout.exit_code == 0 and "the API token stays valid" in logout.stdout


def test_a_credentials_file_others_may_read_is_refused(cli: Any, server: Served,
                                                       tmp_path: Path) -> None:
    login(cli, server)
    path = credentials_file(tmp_path)
    path.chmod(0o644)
    result = cli("runs", "--server", server.url)
    assert result.exit_code == 2
    assert f"{path} may be read by other users (mode 0644)" in result.stderr
    assert "chmod 600" in result.stderr
    path.chmod(0o600)
    assert cli("runs", "--server", server.url).exit_code == 0


def test_runs_show_run_cancel_and_retry_through_the_server(cli: Any, server: Served,
                                                            tmp_path: Path) -> None:
    login(cli, server)
    ran = cli("run", "hello", "--server", "default", "-i", "name=there")
    assert ran.exit_code == 0, ran.stderr
    first = ran.stdout.splitlines()[0]
    assert first.startswith("run ") and "hello 1.0.0  COMPLETED" in first
    assert "greet  SUCCEEDED" in ran.stdout
    assert "greet SUCCEEDED" in ran.stderr  # the progress lines
    run_id = first.split()[1]

    as_json = json.loads(cli("run", "hello", "--server", server.url, "--json").stdout)
    assert as_json["status"] == "COMPLETED" and as_json["jobs"][0]["attempts"][0]["log"]

    listed = cli("runs", "--server", server.url, "--limit", "1")
    assert listed.stdout.splitlines()[1].startswith(as_json["id"])
    runs = json.loads(cli("runs", "--json", "--workflow", "hello",
                          BASESHIFT_SERVER=server.url).stdout)
    assert {r["id"] for r in runs} == {run_id, as_json["id"]}

    shown = cli("show", run_id, "--server", server.url, "--logs")
    assert shown.stdout.startswith(f"run {run_id}  hello 1.0.0  COMPLETED")
    assert "| hi there" in shown.stdout
    assert json.loads(cli("show", run_id, "--json", BASESHIFT_SERVER=server.url
                          ).stdout)["inputs"] == {"name": "there"}

    failed = cli("run", "flaky", "--server", server.url)
    assert failed.exit_code == 1 and "FAILED" in failed.stdout.splitlines()[0]
    failed_id = failed.stdout.split()[1]
    (tmp_path / "flag").write_text("")
    retried = cli("retry", failed_id, "--server", server.url)
    assert retried.exit_code == 0, retried.stderr
    assert retried.stdout.startswith(f"run {failed_id}  flaky 1.0.0  COMPLETED")

    detached = cli("run", "slow", "--server", server.url, "--detach", "--json")
    slow_id = json.loads(detached.stdout)["workflow_id"]
    cancelled = cli("cancel", slow_id, "--server", server.url)
    assert (cancelled.exit_code, cancelled.stdout) == (0, f"run {slow_id} CANCELLED\n")
    again = cli("cancel", slow_id, "--server", server.url)
    assert again.exit_code == 1 and "error: " in again.stderr

    missing = cli("show", "nope", "--server", server.url)
    assert missing.exit_code == 1 and "run 'nope' not found" in missing.stderr
    unknown = cli("run", "nope", "--server", server.url)
    assert unknown.exit_code == 1 and "nope" in unknown.stderr
    a_file = cli("run", "workflows/hello.bsw", "--server", server.url)
    assert a_file.exit_code == 2 and "name a workflow the server has loaded" in a_file.stderr
    bad_input = cli("run", "hello", "--server", server.url, "-i", "colour=red")
    assert bad_input.exit_code == 2 and "unknown input 'colour'" in bad_input.stderr


def test_a_viewer_is_refused_a_run_naming_the_permission(cli: Any, server: Served) -> None:
    login(cli, server, "vic")
    result = cli("run", "hello", "--server", "default")
    assert result.exit_code == 1
    assert "lacks the permission runs:start" in result.stderr, result.stderr
    assert "hint: ask an administrator" in result.stderr
    assert cli("runs", "--server", "default").exit_code == 0


def test_templates_through_the_server(cli: Any, server: Served, tmp_path: Path) -> None:
    token = server.call(api_token_for(server.bs, "admin"))
    assert cli("login", server.url, "--token-stdin", input=token + "\n").exit_code == 0
    published = cli("templates", "publish", str(EXAMPLE), "--server", "default")
    assert (published.exit_code, published.stdout) == (0, "published greeting@1.0.0\n"), \
        published.stderr
    v2 = tmp_path / "v2.template.yaml"
    v2.write_text(EXAMPLE.read_text().replace('version: "1.0.0"\n', ""))
    assert cli("templates", "publish", str(v2), "--bump", "major", "--server", "default"
               ).stdout == "published greeting@2.0.0\n"
    listed = cli("templates", "list", "--server", "default")
    assert listed.stdout.splitlines()[1:] == [
        "greeting  1.0.0    shell  Print a greeting for someone",
        "greeting  2.0.0    shell  Print a greeting for someone"]
    assert cli("templates", "show", "greeting", "--server", "default"
               ).stdout.startswith("greeting@2.0.0")
    shown = json.loads(cli("templates", "show", "greeting", "^1", "--json",
                           "--server", "default").stdout)
    assert shown["version"] == "1.0.0"
    diff = cli("templates", "diff", "greeting", "1.0.0", "2.0.0", "--server", "default")
    assert diff.stdout.startswith("greeting 1.0.0 -> 2.0.0: compatible"), diff.stderr
    assert cli("templates", "delete", "greeting", "2.0.0", "--server", "default"
               ).stdout == "deleted greeting@2.0.0\n"
    gone = cli("templates", "show", "greeting", "2.0.0", "--server", "default")
    assert gone.exit_code == 1 and "greeting" in gone.stderr


def test_an_expired_session_is_renewed_and_stored_again(cli: Any, server: Served,
                                                        tmp_path: Path) -> None:
    login(cli, server)
    path = credentials_file(tmp_path)
    data = stored(tmp_path)
    before = data["servers"][server.url]
    data["servers"][server.url]["expires_at"] = 0  # past: renewed before it is sent
    path.write_text(json.dumps(data))
    result = no_secret(cli("runs", "--server", "default"), before["refresh_token"])
    assert result.exit_code == 0, result.stderr
    after = stored(tmp_path)["servers"][server.url]
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    data = stored(tmp_path)  # an access token the server no longer takes: 401, renewed
    data["servers"][server.url]["access_token"] = "not.a.token"
    path.write_text(json.dumps(data))
    assert cli("runs", "--server", "default").exit_code == 0
    assert stored(tmp_path)["servers"][server.url]["access_token"] != "not.a.token"

    data = stored(tmp_path)  # a refresh token already spent ends the session
    data["servers"][server.url].update(access_token="not.a.token",
                                       refresh_token=after["refresh_token"])
    path.write_text(json.dumps(data))
    ended = cli("runs", "--server", "default")
    assert ended.exit_code == 1
    assert f"the session on {server.url} has ended" in ended.stderr
    assert f"hint: run `baseshift login {server.url}`" in ended.stderr


def test_logout_ends_the_session_and_forgets_it(cli: Any, server: Served,
                                                tmp_path: Path) -> None:
    login(cli, server)
    refresh = stored(tmp_path)["servers"][server.url]["refresh_token"]
    result = cli("logout")
    assert (result.exit_code, result.stdout) == (0, f"signed out of {server.url}\n")
    assert stored(tmp_path) == {"default": None, "servers": {}}
    logins = server.bs.stash[AUTH].logins
    with pytest.raises(Exception, match="already used or revoked"):
        server.call(logins.refresh(refresh))
    after = cli("runs", "--server", server.url)
    assert after.exit_code == 1 and f"not signed in to {server.url}" in after.stderr
    assert f"baseshift login {server.url}" in after.stderr
    assert cli("logout").exit_code == 2


def test_no_server_no_login_and_conflicting_flags(cli: Any, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    down = cli("runs", "--server", f"http://127.0.0.1:{port}")
    assert down.exit_code == 1, down.stderr
    assert f"cannot reach http://127.0.0.1:{port}: connection refused" in down.stderr
    refused = cli("login", f"http://127.0.0.1:{port}", "-u", "x", "--password-stdin",
                  input="y\n")
    assert refused.exit_code == 1
    assert f"cannot reach http://127.0.0.1:{port}: connection refused" in refused.stderr
    both = cli("runs", "--server", "http://127.0.0.1:1", "--data-dir", str(tmp_path))
    assert both.exit_code == 2 and "--server and --data-dir name two places" in both.stderr
    assert cli("runs", "--server", "default").exit_code == 1
    assert cli("login", "ftp://x").exit_code == 2
    assert cli("run", "hello", "--detach").exit_code == 2
    local = cli("run", "missing.bsw")
    assert local.exit_code == 2 and "no such file or folder" in local.stderr


def test_a_server_without_authentication_needs_no_login(cli: Any, tmp_path: Path) -> None:
    settings = Settings(load_entrypoints=False, store="memory", templates="memory",
                        data_dir=tmp_path / "data", workflows_dir=tmp_path, auth="none")
    with served(settings) as srv:
        result = cli("runs", "--server", srv.url)
        assert (result.exit_code, result.stdout) == (0, "no runs yet\n"), result.stderr


def test_tls_needs_the_private_authority(cli: Any, tmp_path: Path) -> None:
    from tests.tls_support import make_pki

    pki = make_pki(tmp_path)
    settings = Settings(load_entrypoints=False, store="memory", templates="memory",
                        data_dir=tmp_path / "data", workflows_dir=tmp_path,
                        extra=NO_FIRST_ADMIN)
    with served(settings, certfile=str(pki.cert), keyfile=str(pki.key)) as srv:
        token = srv.call(api_token_for(srv.bs, "viewer"))
        untrusted = cli("login", srv.url, "--token-stdin", input=token + "\n")
        assert untrusted.exit_code == 1
        assert f"the certificate of {srv.url} is not trusted" in untrusted.stderr
        assert "--ca-file" in untrusted.stderr
        trusted = cli("login", srv.url, "--token-stdin", "--ca-file", str(pki.ca),
                      input=token + "\n")
        assert trusted.exit_code == 0, trusted.stderr
        assert cli("runs", "--server", "default").exit_code == 0  # the CA is remembered


def test_help_names_the_server_options(cli: Any) -> None:
    for command in (("runs",), ("show",), ("run",), ("cancel",), ("retry",),
                    ("templates", "list"), ("templates", "publish")):
        result = cli(*command, "--help")
        assert "--server URL" in result.stdout and "--ca-file PEM" in result.stdout, command
    assert "--token-stdin" in cli("login", "--help").stdout
    assert "URL" in cli("logout", "--help").stdout


def test_a_run_finished_before_its_stream_began_still_shows_its_jobs() -> None:
    """The event stream of a run that ended before the client connected holds only its
    snapshot: the progress lines then come from it (a fast run raced the client in CI)."""
    import io

    from baseshift.plugins.commands.remote import _print_event

    out = io.StringIO()
    _print_event(out, "snapshot", {
        "workflow_id": "r1", "workflow": "hello", "status": "COMPLETED", "at": 0,
        "completed_jobs": [{"id": "greet", "status": "SUCCEEDED"},
                           {"id": "shout", "status": "SUCCEEDED"}], "running_jobs": []})
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("run r1 hello COMPLETED")
    assert [line.split()[1:] for line in lines[1:]] == [["greet", "SUCCEEDED"],
                                                        ["shout", "SUCCEEDED"]]
