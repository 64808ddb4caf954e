"""The access controls of the compliance report (`compliance_controls`), read from the live
settings and the accounts in the state store: authentication on, MFA per role, how many
administrators, the first administrator's password, the age of the access-token signing key.

Limits (`[plugins.compliance]` in baseshift.toml): `max_admins` (3) and
`signing_key_max_days` (90)."""
from __future__ import annotations

import time

from baseshift.core.access import ROLES_ADMIN, USERS_ADMIN, Role
from baseshift.core.appface import App
from baseshift.core.compliance import Control
from baseshift.core.config import option
from baseshift.core.hookspecs import hookimpl
from baseshift.core.identity import IdentityStore, UserRecord

MAX_ADMINS = 3
SIGNING_KEY_MAX_DAYS = 90
DAY = 86400.0

ACCESS = {"GDPR": ("Article 32",), "HIPAA": ("164.312(a)(1)",), "SOC 2": ("CC6.1", "CC6.2")}
MFA = {"GDPR": ("Article 32",), "HIPAA": ("164.312(d)",), "SOC 2": ("CC6.1",)}
ADMINS = {"GDPR": ("Article 32", "Article 25"), "HIPAA": ("164.308(a)(4)(ii)(B)",),
          "SOC 2": ("CC6.2", "CC6.3")}
INITIAL_PASSWORD = {"GDPR": ("Article 32",), "HIPAA": ("164.308(a)(5)(ii)(D)",),
                    "SOC 2": ("CC6.1",)}
SIGNING_KEY = {"GDPR": ("Article 32",), "HIPAA": ("164.312(d)", "164.312(e)(2)(ii)"),
               "SOC 2": ("CC6.1", "CC6.7")}


@hookimpl
async def compliance_controls(baseshift: App) -> list[Control]:
    controls = [access_control(baseshift)]
    store = baseshift.store
    if not isinstance(store, IdentityStore):
        why = f"the state store '{store.name}' keeps no accounts"
        return [*controls, *(Control(i, t, "pending", why, m) for i, t, m in (
            ("auth.mfa", "MFA required for administrative roles", MFA),
            ("auth.admins", "A small number of enabled administrators", ADMINS),
            ("auth.initial-password", "Initial administrator password changed",
             INITIAL_PASSWORD),
            ("auth.signing-key-age", "Access-token signing key rotated", SIGNING_KEY)))]
    users = [u for u in await store.list_users() if not u.disabled]
    roles = await store.roles()
    admin_roles = {r.name for r in roles if _administers(r)}
    admins = [u for u in users
              if {g.role for g in await store.grants_of(u.id)} & admin_roles]
    max_admins = option(baseshift.settings, "compliance", "max_admins", MAX_ADMINS)
    max_days = option(baseshift.settings, "compliance", "signing_key_max_days",
                      SIGNING_KEY_MAX_DAYS)
    return [*controls, mfa(roles), admin_count(admins, max_admins), initial_password(admins),
            await signing_key(store, max_days)]


def _administers(role: Role) -> bool:
    """Whether `role` may manage users or roles (`admin` and any role given those rights)."""
    return role.allows(USERS_ADMIN.name) or role.allows(ROLES_ADMIN.name)


def access_control(baseshift: App) -> Control:
    on = baseshift.settings.auth != "none"
    evidence = ("authentication is on (auth = \"on\"): every request needs a permission "
                "granted by a role" if on else
                "authentication is off (auth = \"none\"): everyone reaching the server may do "
                "anything")
    return Control("auth.access-control", "Access control enforced on every request",
                   "implemented" if on else "pending", evidence, ACCESS)


def mfa(roles: list[Role]) -> Control:
    """Implemented when every role that administers users or roles requires MFA."""
    with_mfa = sorted(r.name for r in roles if r.mfa)
    without = sorted(r.name for r in roles if not r.mfa)
    exposed = sorted(r.name for r in roles if _administers(r) and not r.mfa)
    evidence = (f"MFA required for: {', '.join(with_mfa) or 'no role'}; "
                f"not required for: {', '.join(without) or 'no role'}")
    if exposed:
        evidence += f"; administrative roles without MFA: {', '.join(exposed)}"
    return Control("auth.mfa", "MFA required for administrative roles",
                   "pending" if exposed else "implemented", evidence, MFA)


def admin_count(admins: list[UserRecord], maximum: int) -> Control:
    names = ", ".join(sorted(u.name for u in admins)) or "none"
    ok = 1 <= len(admins) <= maximum
    return Control("auth.admins", f"Between 1 and {maximum} enabled administrators",
                   "implemented" if ok else "pending",
                   f"{len(admins)} enabled user(s) may administer users or roles: {names} "
                   f"(at most {maximum} allowed)", ADMINS)


def initial_password(admins: list[UserRecord]) -> Control:
    """Implemented when no enabled administrator still signs in with a password it was given
    (the first `admin`'s printed one, or a temporary one an administrator set)."""
    waiting = sorted(u.name for u in admins if u.must_change_password)
    evidence = (f"still on the initial or temporary password: {', '.join(waiting)}" if waiting
                else f"no enabled administrator uses an initial or temporary password "
                     f"({len(admins)} checked)")
    return Control("auth.initial-password", "Initial administrator password changed",
                   "pending" if waiting else "implemented", evidence, INITIAL_PASSWORD)


async def signing_key(store: IdentityStore, max_days: int,
                      now: float | None = None) -> Control:
    """The key that signs access tokens now (the newest unretired one) must be younger than
    `max_days`; the last rotation is when it replaced the one before."""
    now = time.time() if now is None else now
    keys = await store.signing_keys()
    current = [k for k in keys if k.retired_at is None][-1:]
    title = f"Access-token signing key younger than {max_days} days"
    if not current:
        return Control("auth.signing-key-age", title, "implemented",
                       "no signing key exists yet: no access token has been signed",
                       SIGNING_KEY)
    key = current[0]
    age = max(0.0, now - key.created_at) / DAY
    rotations = len(keys) - 1
    last = (f"last rotation {_date(key.created_at)} ({rotations} rotation(s) so far)"
            if rotations else "never rotated (`baseshift signing-keys rotate`)")
    return Control("auth.signing-key-age", title,
                   "implemented" if age < max_days else "pending",
                   f"current key {key.kid} ({key.algorithm}) made {_date(key.created_at)}, "
                   f"{age:.0f} day(s) old (at most {max_days}); {last}", SIGNING_KEY)


def _date(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
