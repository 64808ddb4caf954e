"""The `[plugins.oidc]` table: which OpenID provider to trust, as which client, and which of
its users get which roles here.

    [plugins.oidc]
    issuer = "https://login.example.com/realms/acme"
    client_id = "baseshift"
    client_secret_env = "BASESHIFT_OIDC_CLIENT_SECRET"   # or client_secret = "..."
    name = "Acme SSO"                  # the sign-in page shows "Sign in with Acme SSO"
    scopes = ["openid", "profile", "groups"]
    roles_claim = "groups"
    default_role = "viewer"            # optional: without it, an unmapped user is refused

    [plugins.oidc.roles]
    "baseshift-admins" = "admin"
    "payments" = ["viewer", {role = "operator", scope = "payments.*"}]
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from baseshift.core.access import Grant
from baseshift.core.config import WithPluginOptions
from baseshift.core.errors import ConfigError

TABLE = "oidc"
SECRET_ENV = "BASESHIFT_OIDC_CLIENT_SECRET"
DEFAULT_SCOPES = ("openid", "profile", "email")
KEYS = frozenset({"issuer", "client_id", "client_secret", "client_secret_env", "name",
                  "scopes", "redirect_base", "username_claim", "roles_claim", "roles",
                  "default_role", "timeout"})


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """A configured OpenID provider. `roles` maps a value of the `roles_claim` claim to the
    grants it gives; `default_role` is given to a user no value maps (None: refused)."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    name: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    redirect_base: str | None = None
    username_claim: str = "preferred_username"
    roles_claim: str = "groups"
    roles: Mapping[str, tuple[Grant, ...]] = field(default_factory=dict)
    default_role: str | None = None
    timeout: float = 10.0

    @property
    def source(self) -> str:
        """The `source` of the accounts this provider's users get (core/identity.py)."""
        return f"oidc:{self.issuer}"

    def grants_for(self, claims: Mapping[str, Any]) -> tuple[Grant, ...]:
        """The grants the user with these claims gets: those of every mapped value of the
        roles claim (a string or a list of strings), else the default role, else none."""
        values = claims.get(self.roles_claim)
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            values = []
        grants = [g for v in values if isinstance(v, str) for g in self.roles.get(v, ())]
        if not grants and self.default_role is not None:
            grants = [Grant(self.default_role)]
        return tuple(dict.fromkeys(grants))

    def granted_roles(self) -> set[str]:
        """Every role the configuration may give (checked to exist at start)."""
        named = {g.role for grants in self.roles.values() for g in grants}
        return named | ({self.default_role} if self.default_role else set())


def oidc_settings(settings: WithPluginOptions,
                  environ: Mapping[str, str] = os.environ) -> OidcSettings | None:
    """The configured provider, or None when `[plugins.oidc]` names no issuer (the plugin
    then stays inactive); ConfigError naming the key for anything else amiss."""
    table = settings.extra.get(TABLE) or {}
    if not isinstance(table, Mapping) or not table.get("issuer"):
        return None
    if unknown := sorted(set(table) - KEYS):
        raise ConfigError(f"Config 'plugins.oidc' has unknown key(s) {', '.join(unknown)}.",
                          hint=f"keys: {', '.join(sorted(KEYS))}")
    issuer = _issuer(_text(table, "issuer"))
    scopes = _texts(table, "scopes", DEFAULT_SCOPES)
    if "openid" not in scopes:
        raise _expected("scopes", scopes, "a list of scopes that includes 'openid'")
    default_role = table.get("default_role") or None
    if default_role is not None and not isinstance(default_role, str):
        raise _expected("default_role", default_role, "a role name")
    return OidcSettings(
        issuer=issuer, client_id=_text(table, "client_id"),
        client_secret=_secret(table, environ), name=_text(table, "name", urlsplit(issuer).netloc),
        scopes=scopes, redirect_base=_base(table.get("redirect_base")),
        username_claim=_text(table, "username_claim", "preferred_username"),
        roles_claim=_text(table, "roles_claim", "groups"),
        roles={str(k): _grants(str(k), v) for k, v in (table.get("roles") or {}).items()},
        default_role=default_role, timeout=_timeout(table.get("timeout", 10.0)))


def _expected(key: str, value: Any, what: str) -> ConfigError:
    return ConfigError(f"Config 'plugins.oidc.{key}' has value {value!r}. Expected {what}.")


def _text(table: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise _expected(key, value, "a non-empty string")
    return value


def _texts(table: Mapping[str, Any], key: str, default: Iterable[str]) -> tuple[str, ...]:
    value = table.get(key, list(default))
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _expected(key, value, "a list of strings")
    return tuple(value)


def _issuer(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query \
            or parts.fragment:
        raise _expected("issuer", value, "the provider's https URL, without query or fragment")
    return value.rstrip("/")


def _base(value: Any) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise _expected("redirect_base", value, "this server's URL, as users reach it")
    return str(value).rstrip("/")


def _secret(table: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The client secret: `client_secret` itself, else the variable `client_secret_env`
    names (default BASESHIFT_OIDC_CLIENT_SECRET). The value is never put in a message."""
    if table.get("client_secret"):
        if not isinstance(table["client_secret"], str):
            raise ConfigError("Config 'plugins.oidc.client_secret' must be a string.")
        return str(table["client_secret"])
    variable = _text(table, "client_secret_env", SECRET_ENV)
    secret = environ.get(variable, "")
    if not secret:
        raise ConfigError("the OpenID Connect client secret is not set",
                          hint=f"set the environment variable {variable}, or "
                               "'plugins.oidc.client_secret'")
    return secret


def _grants(value: str, spec: Any) -> tuple[Grant, ...]:
    """A mapping's roles: a role name, `{role, scope}`, or a list of those."""
    items = spec if isinstance(spec, list) else [spec]
    grants = []
    for item in items:
        if isinstance(item, str) and item:
            grants.append(Grant(item))
        elif isinstance(item, Mapping) and isinstance(item.get("role"), str) \
                and isinstance(item.get("scope", "*"), str) and set(item) <= {"role", "scope"}:
            grants.append(Grant(item["role"], item.get("scope") or "*"))
        else:
            raise _expected(f"roles.{value}", spec,
                            "a role name, {role, scope}, or a list of those")
    return tuple(grants)


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _expected("timeout", value, "a positive number of seconds")
    return float(value)
