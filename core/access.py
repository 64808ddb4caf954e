"""Who may do what: actors, permissions, grants and the builtin roles.

The kernel knows no password, token or HTTP request: an `authenticate` hook turns a request
into an `Actor`, and `authorize` hooks decide whether that actor holds a permission on a
resource (core/hookspecs.py). This module names the vocabulary they share. A permission is
a declared name (`runs:start`); a role is a named set of permissions; a grant gives a role
to an actor, everywhere (`*`) or only on the workflows whose names match a pattern
(`payments.*`), as Airflow's DAG-level access or Argo's namespaces do.
"""
from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Permission:
    """One thing an actor may be allowed to do. `name` is `area:verb`; `summary` says what
    it lets the holder do (shown in the roles table of the UI and docs/security.md)."""

    name: str
    summary: str
    scoped: bool = False
    """True when the permission applies to one workflow's runs, jobs or source, so a grant
    limited to some workflows can give it; False for server-wide ones (users, templates)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """A role given to an actor, on every workflow (`scope="*"`) or on those whose names
    match the shell-style pattern `scope` (a scoped grant gives only scoped permissions)."""

    role: str
    scope: str = "*"

    @property
    def text(self) -> str:
        """`ROLE`, or `ROLE:PATTERN` for a scoped grant (as the CLI's `--role` takes)."""
        return self.role if self.scope == "*" else f"{self.role}:{self.scope}"

    def covers(self, workflow: str | None) -> bool:
        """Whether the grant reaches `workflow` (None: a server-wide resource)."""
        if self.scope == "*":
            return True
        return workflow is not None and fnmatch.fnmatchcase(workflow, self.scope)


class ActorKind(enum.StrEnum):
    USER = "user"
    TOKEN = "token"  # an API token, acting for its owner with its own roles
    CLIENT = "client"  # an OAuth 2.0 client (client-credentials grant)
    ANONYMOUS = "anonymous"
    LOCAL = "local"  # the whole server, when started with `--auth none` on loopback
    SYSTEM = "system"  # the server itself: triggers, schedules, resumed runs


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: its id (a user id, a token id), the name shown in audit entries and
    pages, its kind, and the grants it holds. `user` names the account an API token or a
    session acts for (equal to `name` for a user)."""

    id: str
    name: str
    kind: ActorKind
    grants: tuple[Grant, ...] = ()
    user: str | None = None
    claims: Mapping[str, object] = field(default_factory=dict)
    """What the authenticating plugin knows beside (a token's `jti`, an identity provider's
    subject), for authorize hooks that need more than roles."""

    @property
    def authenticated(self) -> bool:
        return self.kind is not ActorKind.ANONYMOUS

    @property
    def person(self) -> str:
        """Whom to name as having done something: the user an API token or a session acts
        for, else the actor itself (a client, the server)."""
        return self.user or self.name

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.role for g in self.grants))


ANONYMOUS = Actor(id="anonymous", name="anonymous", kind=ActorKind.ANONYMOUS)
SYSTEM = Actor(id="system", name="system", kind=ActorKind.SYSTEM)


@dataclass(frozen=True, slots=True)
class Resource:
    """What a permission is asked about: a kind (`run`, `workflow`, `template`, `user`), its
    id or name, and the workflow it belongs to (which scoped grants match), if any."""

    kind: str
    name: str = ""
    workflow: str | None = None


SERVER = Resource("server")


class Decision(enum.Enum):
    """An `authorize` hook's answer; no answer (None) is no opinion. One DENY wins over any
    number of ALLOWs; with no ALLOW at all the request is refused."""

    ALLOW = "allow"
    DENY = "deny"


def combine(decisions: Iterable[Decision | None]) -> bool:
    """Whether a set of `authorize` answers lets the request through."""
    answers = [d for d in decisions if d is not None]
    return Decision.ALLOW in answers and Decision.DENY not in answers


def _p(name: str, summary: str, *, scoped: bool = False) -> Permission:
    return Permission(name, summary, scoped)


# The builtin permissions, by area. A plugin declares its own with `register_permissions`.
WORKFLOWS_READ = _p("workflows:read", "see workflows, their source and diagrams", scoped=True)
WORKFLOWS_VALIDATE = _p("workflows:validate", "check workflow text without running it")
WORKFLOWS_RELOAD = _p("workflows:reload", "reload the workflows folder")
RUNS_READ = _p("runs:read", "see runs, jobs, logs and live events", scoped=True)
RUNS_START = _p("runs:start", "start runs", scoped=True)
RUNS_CANCEL = _p("runs:cancel", "cancel runs", scoped=True)
RUNS_RETRY = _p("runs:retry", "retry and re-run finished runs", scoped=True)
RUNS_APPROVE = _p("runs:approve", "complete or fail jobs that wait for a person (`manual`)",
                  scoped=True)
ANALYTICS_READ = _p("analytics:read", "see run and job statistics")
TEMPLATES_READ = _p("templates:read", "see published job templates")
TEMPLATES_PUBLISH = _p("templates:publish", "publish job template versions")
TEMPLATES_DELETE = _p("templates:delete", "delete job template versions")
API_DOCS = _p("api:docs", "read the OpenAPI document")
TOKENS_OWN = _p("tokens:own", "create, list and revoke one's own API tokens")
TOKENS_ADMIN = _p("tokens:admin", "list and revoke anyone's API tokens")
USERS_ADMIN = _p("users:admin", "create, disable and reset users; grant roles")
ROLES_ADMIN = _p("roles:admin", "create, change and delete roles")
AUDIT_READ = _p("audit:read", "read the audit trail")
LOGS_READ = _p("logs:read", "search, export and follow the log store: the lines of the "
               "workflows one holds it on, and the server's own with it on every workflow",
               scoped=True)

BUILTIN_PERMISSIONS: tuple[Permission, ...] = (
    WORKFLOWS_READ, WORKFLOWS_VALIDATE, WORKFLOWS_RELOAD, RUNS_READ, RUNS_START, RUNS_CANCEL,
    RUNS_RETRY, RUNS_APPROVE, ANALYTICS_READ, TEMPLATES_READ, TEMPLATES_PUBLISH,
    TEMPLATES_DELETE, API_DOCS, TOKENS_OWN, TOKENS_ADMIN, USERS_ADMIN, ROLES_ADMIN, AUDIT_READ,
    LOGS_READ,
)

ALERTS_READ = "alerts:read"
"""Declared by the `alerts` plugin; held by `operator` too, who answers the alerts."""

ALL = "*"
"""In a role's permissions: every permission, those plugins declare included (`admin`)."""


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of permission names. `mfa` makes a second factor (TOTP) compulsory for
    the users holding it; builtin roles cannot be deleted, only have their MFA changed."""

    name: str
    permissions: frozenset[str]
    summary: str = ""
    mfa: bool = False
    builtin: bool = False

    def allows(self, permission: str) -> bool:
        return ALL in self.permissions or permission in self.permissions


_READ = frozenset({WORKFLOWS_READ.name, WORKFLOWS_VALIDATE.name, RUNS_READ.name,
                   ANALYTICS_READ.name, TEMPLATES_READ.name, API_DOCS.name, TOKENS_OWN.name})

BUILTIN_ROLES: tuple[Role, ...] = (
    Role("admin", frozenset({ALL}), "everything, users and roles included", mfa=True,
         builtin=True),
    Role("operator", _READ | {RUNS_START.name, RUNS_CANCEL.name, RUNS_RETRY.name,
                              RUNS_APPROVE.name, ALERTS_READ, LOGS_READ.name},
         "start, cancel, retry and approve runs; see the alerts and the logs", builtin=True),
    Role("author", _READ | {TEMPLATES_PUBLISH.name, TEMPLATES_DELETE.name,
                            WORKFLOWS_RELOAD.name},
         "publish and delete templates, reload workflows", builtin=True),
    Role("viewer", _READ, "read workflows, runs, templates and statistics", builtin=True),
)
