"""The configuration file: precedence, validation with clear errors, masked display."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.config import masked
from baseshift.core.errors import ConfigError
from baseshift.core.settings import Settings

FILE = """
[baseshift]
data_dir = "state"
store = "memory"
max_parallel = 8
disabled_plugins = ["observer_progress"]

[plugins.demo]
url = "postgresql://ada:hunter2@db:5432/app"
api_key = "abc"
"""


def _settings(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "baseshift.toml"
    path.write_text(text)
    return Settings.from_env({"BASESHIFT_CONFIG": str(path), **env})


def test_the_file_sets_values_relative_to_itself(tmp_path: Path) -> None:
    settings = _settings(tmp_path, FILE)
    assert settings.data_dir == tmp_path / "state"
    assert (settings.store, settings.max_parallel) == ("memory", 8)
    assert settings.disabled_plugins == ("observer_progress",)
    assert settings.extra["demo"]["api_key"] == "abc"


def test_secret_masking_is_on_unless_the_file_turns_it_off(tmp_path: Path) -> None:
    assert Settings().mask_secrets is True
    assert _settings(tmp_path, "[baseshift]\nmask_secrets = false\n").mask_secrets is False


def test_environment_beats_the_file_and_arguments_beat_both(tmp_path: Path) -> None:
    path = tmp_path / "baseshift.toml"
    path.write_text(FILE)
    env = {"BASESHIFT_CONFIG": str(path), "BASESHIFT_STORE": "sqlite",
           "BASESHIFT_MAX_PARALLEL": "3"}
    assert (Settings.from_env(env).store, Settings.from_env(env).max_parallel) == ("sqlite", 3)
    flagged = Settings.from_env(env, store="memory", extra={"other": {"x": 1}})
    assert flagged.store == "memory"
    assert set(flagged.extra) == {"demo", "other"}  # the file's plugin tables stay


@pytest.mark.parametrize(("text", "message", "hint"), [
    ('[baseshift]\nstor = "sqlite"\n', "unknown key 'baseshift.stor'", "baseshift.store"),
    ('[baseshfit]\n', "unknown key 'baseshfit'", "baseshift"),
    ('[baseshift]\nmax_parallel = 0\n', "'baseshift.max_parallel' has value 0", None),
    ('[baseshift]\nmax_parallel = "8"\n', "Expected a positive integer", None),
    ('[baseshift]\nload_entrypoints = "yes"\n', "Expected true or false", None),
    ('[baseshift]\ndisabled_plugins = "a"\n', "a list of plugin names", None),
    ('[baseshift]\nmask_secrets = "no"\n', "Expected true or false", None),
    ('[baseshift]\ntune_gc = 0\n', "Expected true or false", None),
    ('baseshift = 3\n', "'baseshift' must be a table", None),
    ('[baseshift\n', "at line 1, column", "docs/configuration.md"),
])
def test_mistakes_name_the_file_key_and_expectation(tmp_path: Path, text: str, message: str,
                                                    hint: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, text)
    assert message in caught.value.message
    assert str(tmp_path / "baseshift.toml") in caught.value.message
    if hint:
        assert hint in (caught.value.hint or "")


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        Settings.from_env({"BASESHIFT_CONFIG": str(tmp_path / "nope.toml")})


def test_masking_hides_secret_keys_and_url_passwords() -> None:
    shown = masked({"extra": {"db": {"url": "postgresql://ada:hunter2@db/app",
                                     "password": "x", "token": "", "port": 5432}}})
    assert shown == {"extra": {"db": {"url": "postgresql://ada:***@db/app", "password": "***",
                                      "token": "", "port": 5432}}}


@pytest.mark.slow
def test_config_show_prints_the_effective_settings_masked(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "baseshift.toml").write_text(FILE)
    result = run_cli("config", "show", "--json", cwd=tmp_path,
                     env={"BASESHIFT_MAX_PARALLEL": "5"})
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["config_file"] == "baseshift.toml"
    assert body["settings"]["max_parallel"] == 5
    assert body["settings"]["extra"]["demo"] == {"url": "postgresql://ada:***@db:5432/app",
                                                 "api_key": "***"}
    assert "hunter2" not in result.stdout


def test_a_bad_file_stops_every_command_with_one_clear_error(run_cli: Any,
                                                             tmp_path: Path) -> None:
    (tmp_path / "baseshift.toml").write_text('[baseshift]\nstore = 3\n')
    result = run_cli("runs", cwd=tmp_path)
    assert result.exit_code == 2
    assert "'baseshift.store' has value 3" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("setting", "value", "choices"), [
    ("live", "redsi", "local, redis"), ("results", "mongodb", "none, mongo"),
    ("queue", "rabbit", "local, postgres"), ("cache", "memcached", "memory, redis"),
])
def test_an_unknown_backend_name_lists_the_choices(tmp_path: Path, setting: str, value: str,
                                                   choices: str) -> None:
    with pytest.raises(ConfigError, match=f"Config '{setting}' has value '{value}'. "
                       f"Not one of: {choices}."):
        BaseShift(Settings(data_dir=tmp_path, load_entrypoints=False, **{setting: value}))
