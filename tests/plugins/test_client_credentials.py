"""The credentials file of `baseshift login`: where it lives, who may read it, how it is
replaced, which server is the default."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from baseshift.core.errors import ConfigError, InputError
from baseshift.plugins.client.credentials import (
    API_TOKEN,
    SESSION,
    CredentialFile,
    Credentials,
    Login,
    config_dir,
    server_url,
)

A, B = "https://a.example", "https://b.example:8443"


def session(user: str = "olga") -> Login:
    return Login(SESSION, user, "access-secret", "refresh-secret", 123.0)


def test_the_folder_follows_xdg_config_home(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "baseshift"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_dir() == tmp_path / "home" / ".config" / "baseshift"


def test_saved_private_and_read_back(tmp_path: Path) -> None:
    file = CredentialFile(tmp_path / "cfg")
    assert file.load() == Credentials({})
    file.save(Credentials({}).with_login(A, session()))
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.folder.stat().st_mode) == 0o700
    assert file.load() == Credentials({A: session()}, A)
    assert [p.name for p in file.folder.iterdir()] == ["credentials.json"]  # no temp left


def test_the_last_login_is_the_default_and_renewal_keeps_it(tmp_path: Path) -> None:
    both = Credentials({}).with_login(A, session()).with_login(B, Login(API_TOKEN, "x", "t"))
    assert both.default == B
    renewed = both.with_login(A, session().renewed("new", "newer", 456.0), default=False)
    assert renewed.default == B and renewed.servers[A].refresh_token == "newer"
    assert renewed.without(B).default == A
    assert renewed.without(A).without(B) == Credentials({}, None)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    file = CredentialFile(tmp_path)
    file.save(Credentials({}).with_login(A, session()))
    file.path.chmod(mode)
    with pytest.raises(ConfigError, match=f"may be read by other users \\(mode {mode:04o}\\)"):
        file.load()


def test_a_symlink_or_a_foreign_file_is_refused(tmp_path: Path) -> None:
    file = CredentialFile(tmp_path / "cfg")
    file.folder.mkdir()
    (tmp_path / "elsewhere.json").write_text("{}")
    os.symlink(tmp_path / "elsewhere.json", file.path)
    with pytest.raises(ConfigError, match="cannot read"):
        file.load()
    file.path.unlink()
    file.path.write_text("[1, 2]")
    file.path.chmod(0o600)
    with pytest.raises(ConfigError, match="not a credentials file"):
        file.load()


def test_tokens_stay_out_of_reprs() -> None:
    assert "secret" not in repr(session()) and "secret" not in repr(Credentials({A: session()}))


@pytest.mark.parametrize("text,url", [("https://a.example/", A), (" http://h:1 ", "http://h:1"),
                                      ("https://a.example/base/", "https://a.example/base")])
def test_server_urls(text: str, url: str) -> None:
    assert server_url(text) == url


@pytest.mark.parametrize("text", ["a.example", "ftp://a.example", "https://u:p@a.example",
                                  "https://a.example/?x=1", "https://"])
def test_bad_server_urls(text: str) -> None:
    with pytest.raises(InputError):
        server_url(text)
