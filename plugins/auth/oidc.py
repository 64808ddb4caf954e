"""The builtin `oidc` plugin: sign-in with an external OpenID provider (authorization code
with PKCE), its users' roles mapped from a claim by configuration. Active only when
`[plugins.oidc]` names an `issuer` (plugins/auth/oidc_config.py lists the options)."""
from __future__ import annotations

from typing import Any

from baseshift.core.appface import App
from baseshift.core.errors import ConfigError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING

from .oidc_config import TABLE
from .state import AUTH, SIGN_IN_LINKS, SignInLink


def configured(baseshift: App) -> bool:
    table = baseshift.settings.extra.get(TABLE)
    return isinstance(table, dict) and bool(table.get("issuer"))


@hookimpl
def register_routes(baseshift: App) -> list[Any]:
    if not configured(baseshift):
        return []
    from . import oidc_routes

    return oidc_routes.routes()


@hookimpl(trylast=True)
async def startup(baseshift: App) -> None:
    """After the `auth` plugin's start-up (its accounts are needed): read the options, check
    the roles they give exist, and offer the sign-in link. Only a server signs people in,
    so other commands neither need the client secret nor complain of its absence."""
    if not configured(baseshift) or not baseshift.stash.get(SERVING):
        return
    import httpx

    from .oidc_client import OIDC, RelyingParty
    from .oidc_config import oidc_settings
    from .oidc_routes import LOGIN_PATH

    settings = oidc_settings(baseshift.settings)
    state = baseshift.stash.get(AUTH)
    if settings is None or state is None:
        raise ConfigError("sign-in with an identity provider needs accounts",
                          hint="remove [plugins.oidc] when running with --auth none")
    missing = sorted(settings.granted_roles() - set(await state.accounts.roles()))
    if missing:
        raise ConfigError(f"Config 'plugins.oidc' gives role(s) {', '.join(missing)}, which "
                          "do not exist", hint="create them first (PUT /api/v1/roles/NAME or the "
                                               "roles page), or map to builtin roles")
    baseshift.stash[OIDC] = RelyingParty(settings, httpx.AsyncClient())
    baseshift.stash.setdefault(SIGN_IN_LINKS, []).append(
        SignInLink(f"Sign in with {settings.name}", LOGIN_PATH))


@hookimpl
async def shutdown(baseshift: App) -> None:
    if not configured(baseshift):  # nothing started: spare every command the client's import
        return
    from .oidc_client import OIDC

    party = baseshift.stash.pop(OIDC)
    if party is not None:
        await party.http.aclose()
