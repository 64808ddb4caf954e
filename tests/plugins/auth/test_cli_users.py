"""`baseshift users`, `tokens` and `signing-keys` as an administrator runs them on the
server's data dir, and what the server then lets those accounts do."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyotp

PASSWORD = "correct horse battery staple"


def test_users_add_list_roles_disable_and_tokens(run_cli: Any, tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "d")]
    added = run_cli("users", "add", "ann", "--role", "operator", "--role", "viewer:pay*",
                    "--password-stdin", "--totp", "--json", *data, input=PASSWORD + "\n")
    assert added.exit_code == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["totp_uri"].startswith("otpauth://totp/") and made["name"] == "ann"
    secret = pyotp.parse_uri(made["totp_uri"]).secret
    assert len(secret) >= 16

    weak = run_cli("users", "add", "bob", "--role", "viewer", "--password-stdin", *data,
                   input="short\n")
    assert weak.exit_code != 0 and "password refused" in weak.stderr

    listed = json.loads(run_cli("users", "list", "--json", *data).stdout)
    assert listed == [{"name": "ann", "roles": ["operator", "viewer:pay*"], "disabled": False,
                       "mfa": True, "must_change_password": False, "source": "local"}]
    roles = run_cli("users", "roles", "ann", "--set", "author", *data)
    assert roles.exit_code == 0 and "ann: author" in roles.stdout

    token = run_cli("tokens", "create", "--user", "ann", "--name", "ci", "--role", "author",
                    "--json", *data)
    assert token.exit_code == 0, token.stderr
    secret_token = json.loads(token.stdout)["token"]
    assert secret_token.startswith("bsat_")
    tokens = run_cli("tokens", "list", "--json", *data)
    assert secret_token not in tokens.stdout
    token_id = json.loads(tokens.stdout)[0]["id"]
    revoked = run_cli("tokens", "revoke", token_id, *data)
    assert revoked.exit_code == 0
    assert json.loads(run_cli("tokens", "list", "--json", *data).stdout)[0]["revoked"]

    disabled = run_cli("users", "disable", "ann", *data)
    assert disabled.exit_code == 0
    assert json.loads(run_cli("users", "list", "--json", *data).stdout)[0]["disabled"]
    unknown = run_cli("users", "disable", "nobody", *data)
    assert unknown.exit_code != 0 and "no user 'nobody'" in unknown.stderr


def test_signing_keys_rotate(run_cli: Any, tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "d")]
    assert "no signing key yet" in run_cli("signing-keys", "list", *data).stdout
    assert run_cli("signing-keys", "rotate", *data).exit_code == 0
    assert run_cli("signing-keys", "rotate", *data).exit_code == 0
    keys = json.loads(run_cli("signing-keys", "list", "--json", *data).stdout)
    assert [k["retired_at"] is None for k in keys] == [False, True]
    assert "PRIVATE" not in json.dumps(keys)


def test_the_commands_have_help(run_cli: Any) -> None:
    for command in ("users", "tokens", "signing-keys"):
        shown = run_cli(command, "--help")
        assert shown.exit_code == 0 and "ACTION" in shown.stdout
