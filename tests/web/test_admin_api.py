"""Administering accounts over the API: users and roles, as an administrator does it, and
what each change does to the people it concerns."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from baseshift.plugins.auth.state import AUTH
from tests.auth_support import bearer
from tests.web.api_support import API

PASSWORD = "correct horse battery staple"


async def test_create_list_disable_and_regrant_a_user(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        made = await admin.post(f"{API}/users", json={
            "name": "ann", "password": PASSWORD, "roles": ["viewer"], "totp": True})
        assert made.status_code == 201, made.text
        assert made.json()["totp_uri"].startswith("otpauth://totp/")
        assert made.json()["user"]["roles"] == [{"role": "viewer", "scope": "*"}]
        names = [u["name"] for u in (await admin.get(f"{API}/users")).json()]
        assert "ann" in names
        again = await admin.post(f"{API}/users", json={"name": "ann", "roles": ["viewer"]})
        assert again.status_code == 409

        regranted = await admin.put(f"{API}/users/ann/roles",
                                    json={"roles": [{"role": "operator", "scope": "pay*"}]})
        assert regranted.json()["roles"] == [{"role": "operator", "scope": "pay*"}]
        disabled = await admin.patch(f"{API}/users/ann", json={"disabled": True})
        assert disabled.json()["disabled"] is True
        reset = await admin.post(f"{API}/users/ann/reset-mfa")
        assert reset.json()["mfa"] is False
        assert (await admin.get(f"{API}/users/nobody")).status_code == 404


async def test_a_disabled_user_cannot_sign_in(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        await admin.post(f"{API}/users", json={"name": "bob", "password": PASSWORD,
                                               "roles": ["viewer"]})
        login = {"username": "bob", "password": PASSWORD}
        assert (await admin.post(f"{API}/auth/login", json=login)).status_code == 200
        await admin.patch(f"{API}/users/bob", json={"disabled": True})
        assert (await admin.post(f"{API}/auth/login", json=login)).status_code == 401


async def test_custom_roles_grant_what_they_list(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        role = await admin.put(f"{API}/roles/starter",
                               json={"permissions": ["runs:start", "runs:read"]})
        assert role.status_code == 200, role.text
        await admin.post(f"{API}/users", json={"name": "cy", "password": PASSWORD,
                                               "roles": ["starter"]})
        pair = (await admin.post(f"{API}/auth/login", json={
            "username": "cy", "password": PASSWORD})).json()
        as_cy = bearer(pair["access_token"])
        started = await admin.post(f"{API}/workflows", json={"workflow": "hello"},
                                   headers=as_cy)
        assert started.status_code == 201, started.text
        refused = await admin.post(f"{API}/templates", json={}, headers=as_cy)
        assert refused.status_code == 403
        unknown = await admin.put(f"{API}/roles/odd", json={"permissions": ["runs:fly"]})
        assert unknown.status_code == 422 and "runs:fly" in unknown.json()["detail"]
        assert (await admin.delete(f"{API}/roles/starter")).status_code == 204
        gone = await admin.post(f"{API}/workflows", json={"workflow": "hello"},
                                headers=as_cy)
        assert gone.status_code == 403


async def test_builtin_roles_keep_their_permissions(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        widened = await admin.put(f"{API}/roles/viewer", json={"permissions": ["*"]})
        assert widened.status_code == 409
        assert (await admin.delete(f"{API}/roles/admin")).status_code == 409
        mfa = await admin.put(f"{API}/roles/operator", json={
            "permissions": next(r["permissions"] for r in (await admin.get(
                f"{API}/roles")).json() if r["name"] == "operator"), "mfa": True})
        assert mfa.status_code == 200 and mfa.json()["mfa"] is True


async def test_an_author_reloads_the_workflows_folder(make_client: Callable[..., Any],
                                                       workflows_dir: Any) -> None:
    async with make_client(role="author") as (bs, author):
        (workflows_dir / "fresh.bsw").write_text(
            'workflow fresh {\n  version "1.0.0"\n'
            '  job a uses shell { with { command: "echo a" } }\n}\n')
        reloaded = await author.post(f"{API}/definitions/reload")
        assert reloaded.status_code == 200, reloaded.text
        assert "fresh" in [d["name"] for d in reloaded.json()]


async def test_a_builtin_role_stored_by_an_earlier_version_gains_new_permissions(
        make_client: Callable[..., Any]) -> None:
    """A database made before `logs:read` existed stored `operator` without it; the next
    start gives the builtin role this build's permissions and keeps its MFA flag."""
    async with make_client() as (bs, admin):
        accounts = bs.stash[AUTH].accounts
        current = (await accounts.roles())["operator"]
        old = replace(current, permissions=current.permissions - {"logs:read", "alerts:read"},
                      summary="an older summary", mfa=True)
        await bs.store.save_role(old)
        accounts.forget_roles()
        assert "logs:read" not in (await accounts.roles())["operator"].permissions
        await accounts.ensure_builtin_roles()  # as at the next start
        operator = (await accounts.roles())["operator"]
        assert operator.permissions == current.permissions
        assert operator.summary == current.summary and operator.mfa is True
        listed = next(r for r in (await admin.get(f"{API}/roles")).json()
                      if r["name"] == "operator")
        assert "logs:read" in listed["permissions"]
