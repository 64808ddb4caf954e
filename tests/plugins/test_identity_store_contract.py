"""The IdentityStore contract (core/identity.py), run against every built-in state store:
users, roles, grants, API and refresh tokens, signing keys; plus what the SQL stores add:
atomic spends under real concurrency, and databases made before the identity tables."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, insert

from baseshift.core.access import ALL, BUILTIN_ROLES, Grant, Role
from baseshift.core.backends import STATE
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.identity import (
    ApiTokenRecord,
    IdentityStore,
    RefreshTokenRecord,
    SigningKeyRecord,
    UserRecord,
)
from baseshift.plugins.storage.identity_tables import IDENTITY_TABLES
from baseshift.plugins.storage.pg_backup import TABLES, dump_database
from baseshift.plugins.storage.pg_connect import PgTarget
from baseshift.plugins.storage.pg_schema import migrate
from baseshift.plugins.storage.pg_store import PostgresStateStore
from baseshift.plugins.storage.sql_models import META, METADATA, RUNS, run_row
from baseshift.plugins.storage.sqlite_store import SQLiteStateStore
from tests.plugins.backends import names, opened_state_store
from tests.plugins.races import race, two_sql_stores
from tests.plugins.store_records import a_run

T = TypeVar("T")
BACKENDS = names(STATE)
"""Every state store a builtin plugin offers (memory, postgres, sqlite)."""
SQL_BACKENDS = ["postgres", "sqlite"]
ROUNDS = 12
"""Races run per concurrency test: each is one chance for a non-atomic spend to show."""


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An open state store of each kind, holding the builtin roles."""
    async with opened_state_store(request.param, tmp_path) as s:
        assert isinstance(s, IdentityStore)
        for role in BUILTIN_ROLES:
            await s.save_role(role)
        yield s


def a_user(user_id: str = "u1", name: str = "ann", **fields: Any) -> UserRecord:
    return UserRecord(id=user_id, name=name, created_at=10.0, updated_at=10.0, **fields)


def every_field(user_id: str = "u1", name: str = "ann") -> UserRecord:
    """A user with no field left at its default."""
    return UserRecord(
        id=user_id, name=name, password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        totp_secret="JBSWY3DPEHPK3PXP", totp_confirmed=True, totp_last_step=57_000_123,
        recovery_codes=("d3", "a1", "c2"), disabled=True, must_change_password=True,
        source="oidc:https://id.example", created_at=1_700_000_000.25,
        updated_at=1_700_000_001.5)


def a_token(token_id: str = "t1", user_id: str = "u1", created_at: float = 20.0,
            **fields: Any) -> ApiTokenRecord:
    values: dict[str, Any] = {"name": f"ci-{token_id}", "token_hash": f"sha-{token_id}",
                              "grants": (Grant("viewer"),)}
    return ApiTokenRecord(id=token_id, user_id=user_id, created_at=created_at,
                          **(values | fields))


def a_refresh(token_hash: str = "r1", family: str = "f1", user_id: str = "u1",
              **fields: Any) -> RefreshTokenRecord:
    return RefreshTokenRecord(token_hash=token_hash, family=family, user_id=user_id,
                              created_at=30.0, expires_at=3630.0, **fields)


def a_key(kid: str = "k1", created_at: float = 40.0, **fields: Any) -> SigningKeyRecord:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
           "kid": kid, "key_ops": ["verify"], "ext": {"nested": [1, None, 2.5]}}
    return SigningKeyRecord(kid=kid, algorithm="EdDSA", private_pem=f"-----PEM {kid}-----",
                            public_jwk=jwk, created_at=created_at, **fields)


async def codes_of(store: IdentityStore, name: str) -> tuple[str, ...]:
    found = await store.get_user(name)
    assert found is not None
    return found.recovery_codes


async def token(store: IdentityStore, token_hash: str) -> ApiTokenRecord:
    found = await store.find_api_token(token_hash)
    assert found is not None
    return found


async def test_every_builtin_state_store_is_an_identity_store(store: Any) -> None:
    assert BACKENDS == ["memory", "postgres", "sqlite"]
    assert isinstance(store, IdentityStore)


# --------------------------------------------------------------------- users


async def test_add_and_get_a_user_round_trip_every_field(store: IdentityStore) -> None:
    user = every_field()
    await store.add_user(user)
    assert await store.get_user("ann") == user
    assert await store.get_user_by_id("u1") == user
    assert await store.get_user("nobody") is None
    assert await store.get_user_by_id("u2") is None
    assert await store.grants_of("u1") == []


async def test_a_user_with_defaults_round_trips(store: IdentityStore) -> None:
    await store.add_user(UserRecord(id="u1", name="ann"))
    assert await store.get_user("ann") == UserRecord(id="u1", name="ann")


async def test_add_user_with_grants(store: IdentityStore) -> None:
    grants = [Grant("operator", "payments.*"), Grant("viewer")]
    await store.add_user(a_user(), grants)
    assert await store.grants_of("u1") == grants


@pytest.mark.parametrize("taken", ["id", "name"])
async def test_add_user_rejects_a_taken_id_or_name(store: IdentityStore, taken: str) -> None:
    await store.add_user(a_user(), [Grant("viewer")])
    other = a_user("u1", "bob") if taken == "id" else a_user("u2", "ann")
    with pytest.raises(Conflict):
        await store.add_user(other, [Grant("admin")])
    assert await store.list_users() == [a_user()]
    assert await store.grants_of("u1") == [Grant("viewer")]
    assert await store.grants_of("u2") == []


async def test_add_user_with_an_unknown_role_writes_nothing(store: IdentityStore) -> None:
    with pytest.raises(NotFound, match="ghost"):
        await store.add_user(a_user(recovery_codes=("c1",)), [Grant("viewer"), Grant("ghost")])
    assert await store.count_users() == 0
    assert await store.get_user("ann") is None
    await store.add_user(a_user(recovery_codes=("c1",)))  # nothing of it was left behind
    assert (await store.get_user("ann")) == a_user(recovery_codes=("c1",))


async def test_save_user_replaces_every_field(store: IdentityStore) -> None:
    await store.add_user(a_user(recovery_codes=("old1", "old2")), [Grant("viewer")])
    changed = every_field("u1", "annie")
    await store.save_user(changed)
    assert await store.get_user_by_id("u1") == changed
    assert await store.get_user("annie") == changed
    assert await store.get_user("ann") is None
    assert await store.grants_of("u1") == [Grant("viewer")]  # grants are not fields
    await store.save_user(a_user("u1", "ann"))
    assert await store.get_user("ann") == a_user("u1", "ann")  # codes emptied, fields reset


async def test_save_user_of_an_unknown_id_is_not_found(store: IdentityStore) -> None:
    with pytest.raises(NotFound, match="u9"):
        await store.save_user(a_user("u9"))
    assert await store.count_users() == 0


async def test_save_user_rejects_a_name_another_user_has(store: IdentityStore) -> None:
    await store.add_user(a_user("u1", "ann"))
    await store.add_user(a_user("u2", "bob", recovery_codes=("c1",)))
    with pytest.raises(Conflict):
        await store.save_user(a_user("u2", "ann", disabled=True))
    assert await store.get_user_by_id("u2") == a_user("u2", "bob", recovery_codes=("c1",))


async def test_list_users_by_name_and_count(store: IdentityStore) -> None:
    assert await store.list_users() == []
    assert await store.count_users() == 0
    names = ["carl", "Ann", "bob", "álvaro", "Zed", "ann"]
    for i, name in enumerate(names):
        await store.add_user(a_user(f"u{i}", name, recovery_codes=(f"c{i}",)))
    users = await store.list_users()
    assert [u.name for u in users] == sorted(names)  # by code point, as Python sorts
    assert [u.recovery_codes for u in users] == [(f"c{names.index(u.name)}",) for u in users]
    assert await store.count_users() == len(names)


async def test_records_are_copies(store: IdentityStore) -> None:
    user = a_user(recovery_codes=("c1",))
    await store.add_user(user)
    user.name, user.disabled = "changed", True
    loaded = await store.get_user_by_id("u1")
    assert loaded == a_user(recovery_codes=("c1",))
    loaded.disabled = True
    assert await store.get_user("ann") == a_user(recovery_codes=("c1",))
    key = a_key()
    await store.add_signing_key(key)
    key.public_jwk["ext"]["nested"].append("x")
    (await store.signing_keys())[0].public_jwk["kty"] = "RSA"
    assert await store.signing_keys() == [a_key()]


async def test_a_recovery_code_is_good_once(store: IdentityStore) -> None:
    await store.add_user(a_user(recovery_codes=("c1", "c2", "c3")))
    assert await store.use_recovery_code("u1", "c2") is True
    assert await store.use_recovery_code("u1", "c2") is False
    assert await codes_of(store, "ann") == ("c1", "c3")
    assert await store.use_recovery_code("u1", "nope") is False
    assert await store.use_recovery_code("u9", "c1") is False


async def test_a_recovery_code_belongs_to_its_user(store: IdentityStore) -> None:
    await store.add_user(a_user("u1", "ann", recovery_codes=("same",)))
    await store.add_user(a_user("u2", "bob", recovery_codes=("same",)))
    assert await store.use_recovery_code("u2", "same") is True
    assert await codes_of(store, "ann") == ("same",)


# --------------------------------------------------------------------- roles


async def test_roles_round_trip_by_name(store: IdentityStore) -> None:
    assert await store.roles() == sorted(BUILTIN_ROLES, key=lambda r: r.name)
    empty = Role("nothing", frozenset(), "")
    everything = Role("Root", frozenset({ALL}), "all", mfa=True)
    custom = Role("deployer", frozenset({"runs:start", "plugin:deploy"}), "deploys", mfa=True)
    for role in (empty, everything, custom):
        await store.save_role(role)
    found = await store.roles()
    assert [r.name for r in found] == sorted(r.name for r in (*BUILTIN_ROLES, empty,
                                                               everything, custom))
    assert {empty, everything, custom} <= set(found)


async def test_save_role_replaces_a_role_and_keeps_its_grants(store: IdentityStore) -> None:
    await store.save_role(Role("ops", frozenset({"runs:start", "runs:read"}), "ops"))
    await store.add_user(a_user(), [Grant("ops", "pay.*"), Grant("viewer")])
    await store.add_api_token(a_token(grants=(Grant("ops"),)))
    replaced = Role("ops", frozenset({"runs:cancel"}), "cancels", mfa=True, builtin=True)
    await store.save_role(replaced)
    assert [r for r in await store.roles() if r.name == "ops"] == [replaced]
    assert await store.grants_of("u1") == [Grant("ops", "pay.*"), Grant("viewer")]
    assert (await token(store, "sha-t1")).grants == (Grant("ops"),)


async def test_delete_role_removes_every_grant_of_it(store: IdentityStore) -> None:
    await store.add_user(a_user("u1", "ann"), [Grant("viewer", "a.*"), Grant("author"),
                                               Grant("viewer")])
    await store.add_user(a_user("u2", "bob"), [Grant("viewer")])
    await store.add_api_token(a_token(grants=(Grant("author"), Grant("viewer", "b.*"))))
    await store.delete_role("viewer")
    assert "viewer" not in [r.name for r in await store.roles()]
    assert await store.grants_of("u1") == [Grant("author")]
    assert await store.grants_of("u2") == []
    assert (await token(store, "sha-t1")).grants == (Grant("author"),)
    await store.save_role(Role("viewer", frozenset({"runs:read"})))  # a new role, not regranted
    assert await store.grants_of("u2") == []


async def test_delete_an_unknown_role_is_not_found(store: IdentityStore) -> None:
    with pytest.raises(NotFound, match="ghost"):
        await store.delete_role("ghost")
    await store.delete_role("viewer")
    with pytest.raises(NotFound):
        await store.delete_role("viewer")


# --------------------------------------------------------------------- grants


async def test_grants_round_trip_with_scopes_in_order(store: IdentityStore) -> None:
    await store.add_user(a_user())
    grants = [Grant("viewer", "payments.*"), Grant("admin"), Grant("viewer"),
              Grant("operator", "payments.*"), Grant("viewer", "payments.*")]
    await store.set_grants("u1", grants)
    assert await store.grants_of("u1") == grants[:4]  # a repeated grant is kept once
    await store.set_grants("u1", [Grant("author", "docs-?")])
    assert await store.grants_of("u1") == [Grant("author", "docs-?")]
    await store.set_grants("u1", [])
    assert await store.grants_of("u1") == []
    assert await store.grants_of("u9") == []


async def test_set_grants_of_an_unknown_user_or_role_is_not_found(store: IdentityStore) -> None:
    await store.add_user(a_user(), [Grant("viewer")])
    with pytest.raises(NotFound, match="u9"):
        await store.set_grants("u9", [Grant("viewer")])
    with pytest.raises(NotFound, match="ghost"):
        await store.set_grants("u1", [Grant("admin"), Grant("ghost", "x.*")])
    assert await store.grants_of("u1") == [Grant("viewer")]
    assert await store.grants_of("u9") == []


# --------------------------------------------------------------------- API tokens


async def test_api_token_round_trip(store: IdentityStore) -> None:
    await store.add_user(a_user())
    token = a_token(grants=(Grant("operator", "pay.*"), Grant("viewer")), expires_at=999.5)
    await store.add_api_token(token)
    assert await store.find_api_token("sha-t1") == token
    assert await store.find_api_token("sha-none") is None
    assert await store.list_api_tokens("u1") == [token]
    bare = a_token("t2", grants=())
    await store.add_api_token(bare)
    assert await store.find_api_token("sha-t2") == bare


async def test_api_tokens_list_newest_first_revoked_included(store: IdentityStore) -> None:
    await store.add_user(a_user("u1", "ann"))
    await store.add_user(a_user("u2", "bob"))
    for token_id, user_id, at in [("t1", "u1", 1.0), ("t2", "u2", 3.0), ("t3", "u1", 2.0),
                                  ("t5", "u1", 2.0), ("t4", "u2", 2.0)]:
        await store.add_api_token(a_token(token_id, user_id, at))
    assert await store.revoke_api_token("t3", 50.0) is True
    mine = await store.list_api_tokens("u1")
    assert [t.id for t in mine] == ["t5", "t3", "t1"]  # ties on created_at: id, descending
    assert [t.revoked_at for t in mine] == [None, 50.0, None]
    assert [t.id for t in await store.list_api_tokens()] == ["t2", "t5", "t4", "t3", "t1"]
    assert await store.list_api_tokens("u9") == []


async def test_revoke_an_api_token_twice_is_false(store: IdentityStore) -> None:
    await store.add_user(a_user())
    await store.add_api_token(a_token())
    assert await store.revoke_api_token("t1", 50.0) is True
    assert await store.revoke_api_token("t1", 60.0) is False
    assert (await token(store, "sha-t1")).revoked_at == 50.0
    assert await store.revoke_api_token("t9", 50.0) is False


async def test_add_api_token_refusals_write_nothing(store: IdentityStore) -> None:
    await store.add_user(a_user())
    with pytest.raises(NotFound, match="u9"):
        await store.add_api_token(a_token(user_id="u9"))
    with pytest.raises(NotFound, match="ghost"):
        await store.add_api_token(a_token(grants=(Grant("viewer"), Grant("ghost"))))
    assert await store.list_api_tokens() == []
    await store.add_api_token(a_token())
    with pytest.raises(Conflict):
        await store.add_api_token(a_token("t1", token_hash="sha-other"))
    with pytest.raises(Conflict):
        await store.add_api_token(a_token("t2", token_hash="sha-t1"))
    assert await store.list_api_tokens() == [a_token()]


# --------------------------------------------------------------------- refresh tokens


async def test_spend_a_refresh_token_returns_it_as_it_was(store: IdentityStore) -> None:
    await store.add_user(a_user())
    await store.add_refresh_token(a_refresh())
    assert await store.spend_refresh_token("r1", 100.0) == a_refresh()
    reused = await store.spend_refresh_token("r1", 200.0)
    assert reused == a_refresh(used_at=100.0)  # a reuse shows the first use, and keeps it
    assert await store.spend_refresh_token("r1", 300.0) == a_refresh(used_at=100.0)
    assert await store.spend_refresh_token("unknown", 100.0) is None


async def test_add_refresh_token_refusals(store: IdentityStore) -> None:
    await store.add_user(a_user())
    with pytest.raises(NotFound, match="u9"):
        await store.add_refresh_token(a_refresh(user_id="u9"))
    assert await store.spend_refresh_token("r1", 100.0) is None
    await store.add_refresh_token(a_refresh())
    with pytest.raises(Conflict):
        await store.add_refresh_token(a_refresh(family="f2"))
    assert await store.spend_refresh_token("r1", 100.0) == a_refresh()


async def test_revoke_a_refresh_family(store: IdentityStore) -> None:
    await store.add_user(a_user())
    for token_hash, family in [("a1", "fa"), ("a2", "fa"), ("a3", "fa"), ("b1", "fb")]:
        await store.add_refresh_token(a_refresh(token_hash, family))
    await store.spend_refresh_token("a1", 100.0)
    assert await store.session_active("fa") and not await store.session_active("nobody")
    await store.revoke_refresh_family("fa", 200.0)
    assert not await store.session_active("fa") and await store.session_active("fb")
    await store.revoke_refresh_family("fa", 300.0)  # the first revocation's time stays
    await store.revoke_refresh_family("nobody", 300.0)
    assert await store.spend_refresh_token("a1", 400.0) == a_refresh(
        "a1", "fa", used_at=100.0, revoked_at=200.0)
    assert await store.spend_refresh_token("a3", 400.0) == a_refresh("a3", "fa",
                                                                     revoked_at=200.0)
    assert await store.spend_refresh_token("b1", 400.0) == a_refresh("b1", "fb")


async def test_revoke_every_refresh_token_of_a_user(store: IdentityStore) -> None:
    await store.add_user(a_user("u1", "ann"))
    await store.add_user(a_user("u2", "bob"))
    await store.add_refresh_token(a_refresh("a1", "fa", "u1"))
    await store.add_refresh_token(a_refresh("a2", "fb", "u1", revoked_at=50.0))
    await store.add_refresh_token(a_refresh("b1", "fc", "u2"))
    await store.revoke_user_refresh_tokens("u1", 100.0)
    assert await store.spend_refresh_token("a1", 200.0) == a_refresh("a1", "fa", "u1",
                                                                     revoked_at=100.0)
    assert await store.spend_refresh_token("a2", 200.0) == a_refresh("a2", "fb", "u1",
                                                                     revoked_at=50.0)
    assert await store.spend_refresh_token("b1", 200.0) == a_refresh("b1", "fc", "u2")
    with pytest.raises(NotFound, match="u9"):
        await store.revoke_user_refresh_tokens("u9", 100.0)


# --------------------------------------------------------------------- signing keys


async def test_signing_keys_oldest_first(store: IdentityStore) -> None:
    assert await store.signing_keys() == []
    for kid, at in [("k3", 30.0), ("k1", 10.0), ("k2b", 20.0), ("k2a", 20.0)]:
        await store.add_signing_key(a_key(kid, at))
    assert [k.kid for k in await store.signing_keys()] == ["k1", "k2a", "k2b", "k3"]
    assert (await store.signing_keys())[0] == a_key("k1", 10.0)


async def test_retire_a_signing_key(store: IdentityStore) -> None:
    await store.add_signing_key(a_key("k1", 10.0))
    await store.add_signing_key(a_key("k2", 20.0))
    await store.retire_signing_key("k1", 100.0)
    await store.retire_signing_key("k1", 200.0)  # retired once: its date stays
    assert await store.signing_keys() == [a_key("k1", 10.0, retired_at=100.0),
                                          a_key("k2", 20.0)]
    with pytest.raises(NotFound, match="k9"):
        await store.retire_signing_key("k9", 100.0)


async def test_add_a_signing_key_with_a_taken_kid_is_a_conflict(store: IdentityStore) -> None:
    await store.add_signing_key(a_key("k1", 10.0))
    with pytest.raises(Conflict):
        await store.add_signing_key(a_key("k1", 20.0))
    assert await store.signing_keys() == [a_key("k1", 10.0)]


# --------------------------------------------------------------------- concurrency


@pytest.fixture(params=SQL_BACKENDS)
async def two_stores(request: pytest.FixtureRequest,
                     tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    """Two stores on one database, holding the role `viewer`."""
    async with two_sql_stores(request.param, tmp_path) as stores:
        await stores[0].save_role(Role("viewer", frozenset({"runs:read"})))
        yield stores


async def test_concurrent_spends_of_a_refresh_token_one_wins(
        two_stores: tuple[IdentityStore, IdentityStore]) -> None:
    one, two = two_stores
    await one.add_user(a_user())
    for i in range(ROUNDS):
        await one.add_refresh_token(a_refresh(f"r{i}"))
    for i in range(ROUNDS):
        spent = await race(partial(one.spend_refresh_token, f"r{i}", 1.0),
                           partial(two.spend_refresh_token, f"r{i}", 2.0))
        assert all(s is not None for s in spent)
        assert sorted(s.used_at is None for s in spent if s) == [False, True]


async def test_concurrent_uses_of_a_recovery_code_one_wins(
        two_stores: tuple[IdentityStore, IdentityStore]) -> None:
    one, two = two_stores
    await one.add_user(a_user(recovery_codes=tuple(f"c{i}" for i in range(ROUNDS))))
    for i in range(ROUNDS):
        used = await race(partial(one.use_recovery_code, "u1", f"c{i}"),
                          partial(two.use_recovery_code, "u1", f"c{i}"))
        assert sorted(used) == [False, True]
    assert await codes_of(two, "ann") == ()


async def waiters(url: str, table: str, holder: int) -> int:
    """How many sessions other than `holder` wait for a lock while using `table`."""
    rows = await asyncio.to_thread(
        sql, url, "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.relation = %s::regclass AND l.pid <> %s "
        "AND a.wait_event_type = 'Lock'", (table, holder))
    return int(rows[0][0])


def sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with PgTarget.parse(url).connect(autocommit=True) as conn:
        cur = conn.execute(query.encode(), params or None)
        return cur.fetchall() if cur.description else []


@pytest.mark.parametrize("what", ["spend", "recovery"])
async def test_postgres_calls_queued_on_one_row_one_wins(pg_url: str, what: str) -> None:
    """Both calls are made to wait on the row (a third session holds its lock) and then
    released at once: whichever goes second must see the first's write."""
    one, two = PostgresStateStore(pg_url), PostgresStateStore(pg_url)
    await one.open()
    await two.open()
    try:
        await one.add_user(a_user(recovery_codes=("c1",)))
        await one.add_refresh_token(a_refresh())
        table, lock = (("refresh_tokens", "SELECT 1 FROM refresh_tokens FOR UPDATE")
                       if what == "spend" else
                       ("recovery_codes", "SELECT 1 FROM recovery_codes FOR UPDATE"))
        with PgTarget.parse(pg_url).connect() as holder:
            holder.execute(lock.encode())
            calls = asyncio.gather(*(
                (s.spend_refresh_token("r1", 1.0) if what == "spend"
                 else s.use_recovery_code("u1", "c1")) for s in (one, two)))
            for _ in range(6000):  # until both wait: a condition, not a timing
                if await waiters(pg_url, table, holder.info.backend_pid) == 2:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the two calls never both waited for the row lock")
            holder.commit()
            results = await calls
    finally:
        await one.close()
        await two.close()
    if what == "spend":
        assert sorted(r.used_at is None for r in results if r) == [False, True]
    else:
        assert sorted(results) == [False, True]


# --------------------------------------------------------------------- schema upgrades


async def test_sqlite_opens_a_database_made_before_the_identity_tables(
        tmp_path: Path) -> None:
    path = tmp_path / "baseshift.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        METADATA.create_all(conn, tables=[t for t in METADATA.sorted_tables
                                          if t not in IDENTITY_TABLES])
        conn.execute(insert(META), {"key": "schema_version", "value": "1"})
        conn.execute(insert(RUNS), run_row(a_run("old")))
        assert "users" not in {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    engine.dispose()

    store = SQLiteStateStore(f"sqlite:///{path}")
    await store.open()
    try:
        assert (await store.load_run("old")) is not None
        await store.save_role(Role("viewer", frozenset({"runs:read"})))
        await store.add_user(a_user(), [Grant("viewer")])
        assert await store.grants_of("u1") == [Grant("viewer")]
    finally:
        await store.close()


BEFORE_IDENTITY = 4
"""The schema version before migration 5 made the identity tables (plugins/storage/pg_schema.py)."""


async def test_postgres_upgrades_to_the_identity_tables(pg_url: str) -> None:
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        migrate(conn, target=BEFORE_IDENTITY)
        conn.execute(b"INSERT INTO documents (name, value) VALUES ('kept', '1')")
    store = PostgresStateStore(pg_url)
    await store.open()
    try:
        await store.save_role(Role("viewer", frozenset({"runs:read"})))
        await store.add_user(a_user(), [Grant("viewer")])
        assert await store.grants_of("u1") == [Grant("viewer")]
        assert await store.load_document("kept") == 1
    finally:
        await store.close()


def test_postgres_identity_columns_are_the_shared_tables(pg_url: str) -> None:
    """The migration's DDL and identity_tables (which every statement is built from) agree."""
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        migrate(conn)
    rows = sql(pg_url, "SELECT table_name, column_name, is_nullable FROM "
               "information_schema.columns WHERE table_schema = current_schema() "
               "AND table_name = ANY(%s)", ([t.name for t in IDENTITY_TABLES],))
    found = {(t, c, n == "YES") for t, c, n in rows}
    assert found == {(t.name, c.name, bool(c.nullable)) for t in IDENTITY_TABLES for c in t.c}


async def test_postgres_restore_of_an_older_backup_drops_the_identity_tables(
        pg_url: str, tmp_path: Path) -> None:
    """A backup made before the identity tables existed brings the database back to that
    version: accounts made since are gone and the next open creates the tables again."""
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        migrate(conn, target=BEFORE_IDENTITY)
        conn.execute(b"INSERT INTO documents (name, value) VALUES ('kept', '1')")
    dump_database(PgTarget.parse(pg_url), tmp_path / "old.dump")
    store = PostgresStateStore(pg_url)
    await store.open()
    await store.save_role(Role("viewer", frozenset({"runs:read"})))
    await store.add_user(a_user(), [Grant("viewer")])
    await store.restore(tmp_path / "old.dump")
    await store.close()

    reopened = PostgresStateStore(pg_url)
    await reopened.open()
    try:
        assert await reopened.count_users() == 0
        assert await reopened.roles() == []
        assert await reopened.load_document("kept") == 1
    finally:
        await reopened.close()


def test_postgres_restore_drops_every_table_of_the_migrations(pg_url: str) -> None:
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        migrate(conn)
    rows = sql(pg_url, "SELECT relname FROM pg_class WHERE relnamespace = "
               "current_schema()::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition")
    assert {r[0] for r in rows} == set(TABLES)
