"""The `[plugins.oidc]` table read into settings: errors name the key, the client secret
comes from the environment by default and is never shown, claims map to grants."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from baseshift.core.access import Grant
from baseshift.core.errors import ConfigError
from baseshift.plugins.auth.oidc_config import OidcSettings, oidc_settings

BASE = {"issuer": "https://login.example.com/realms/acme/", "client_id": "baseshift"}


@dataclass
class Options:
    extra: dict[str, Any] = field(default_factory=dict)


def read(environ: dict[str, str] | None = None, **table: Any) -> OidcSettings | None:
    return oidc_settings(Options({"oidc": {**BASE, **table}}),
                         {"BASESHIFT_OIDC_CLIENT_SECRET": "from-env"} if environ is None
                         else environ)


def test_no_issuer_means_no_provider() -> None:
    assert oidc_settings(Options({})) is None
    assert oidc_settings(Options({"oidc": {"client_id": "x"}})) is None


def test_defaults_and_the_secret_from_the_environment() -> None:
    settings = read()
    assert settings is not None
    assert settings.issuer == "https://login.example.com/realms/acme"
    assert settings.source == "oidc:https://login.example.com/realms/acme"
    assert settings.name == "login.example.com"
    assert settings.scopes == ("openid", "profile", "email")
    assert settings.client_secret == "from-env" and "from-env" not in repr(settings)
    assert read({"MY_SECRET": "other"}, client_secret_env="MY_SECRET").client_secret \
        == "other"  # type: ignore[union-attr]


def test_a_missing_secret_names_the_variable_not_a_value() -> None:
    with pytest.raises(ConfigError, match="BASESHIFT_OIDC_CLIENT_SECRET"):
        read({})


@pytest.mark.parametrize(("table", "words"), [
    ({"issuer": "login.example.com"}, "plugins.oidc.issuer"),
    ({"issuer": "https://x.example/?a=b"}, "plugins.oidc.issuer"),
    ({"client_id": ""}, "plugins.oidc.client_id"),
    ({"scopes": ["profile"]}, "plugins.oidc.scopes"),
    ({"scopes": [1]}, "plugins.oidc.scopes"),
    ({"roles": {"ops": 3}}, "plugins.oidc.roles.ops"),
    ({"roles": {"ops": [{"role": "operator", "scope": 1}]}}, "plugins.oidc.roles.ops"),
    ({"default_role": ["viewer"]}, "plugins.oidc.default_role"),
    ({"redirect_base": "baseshift.example.com"}, "plugins.oidc.redirect_base"),
    ({"timeout": 0}, "plugins.oidc.timeout"),
    ({"client_secrett": "x"}, "unknown key"),
])
def test_bad_options_name_their_key(table: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        read(**table)


def test_claims_map_to_grants_or_the_default_role() -> None:
    settings = read(roles={"ops": ["operator", {"role": "viewer", "scope": "pay*"}],
                           "admins": "admin"})
    assert settings is not None
    assert settings.grants_for({"groups": ["ops", "other"]}) == (
        Grant("operator"), Grant("viewer", "pay*"))
    assert settings.grants_for({"groups": "admins"}) == (Grant("admin"),)
    assert settings.grants_for({"groups": ["other"]}) == ()
    assert settings.grants_for({"groups": {"ops": 1}}) == ()
    assert settings.granted_roles() == {"operator", "viewer", "admin"}
    defaulted = read(default_role="viewer", roles_claim="roles")
    assert defaulted is not None
    assert defaulted.grants_for({"groups": ["ops"]}) == (Grant("viewer"),)
