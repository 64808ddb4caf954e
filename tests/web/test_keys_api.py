"""The key API (plugins/keys/routes.py): data keys made on request, data encrypted and
decrypted with them; a key of this API never opens a value sealed for the store; every
bad request is a 4xx problem naming what is wrong (never a 500); every call is audited
with the key id and never the data."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseshift.core.audit import AuditQuery

PROBLEM = "application/problem+json"


async def _key(client: Any) -> str:
    made = await client.post("/api/v1/keys/generate")
    assert made.status_code == 201, made.text
    key_id: str = made.json()["key_id"]
    return key_id


async def test_data_round_trips_through_a_generated_key(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        key_id = await _key(client)
        sealed = await client.post("/api/v1/encrypt", json={"key_id": key_id,
                                                            "data": "card 4111"})
        assert sealed.status_code == 200, sealed.text
        token = sealed.json()["encrypted_data"]
        assert token.startswith(f"bsenc:v1:{key_id}:") and "4111" not in token
        opened = await client.post("/api/v1/decrypt", json={"key_id": key_id,
                                                            "encrypted_data": token})
        assert opened.status_code == 200 and opened.json() == {"data": "card 4111"}
        trail = await bs.store.audit_page(AuditQuery(resource=f"data_key:{key_id}"))
        assert sorted(r.entry.action for r in trail) == [
            "keys.decrypt", "keys.encrypt", "keys.generate"]
        assert all("4111" not in str(r.entry) for r in trail)


async def test_decrypt_never_opens_a_value_sealed_for_the_store(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        stored = await bs.hooks.sealer().seal("run secret")
        store_key = stored.split(":")[2]
        api_key = await _key(client)
        for key_id in (store_key, api_key):
            found = await client.post("/api/v1/decrypt", json={"key_id": key_id,
                                                               "encrypted_data": stored})
            assert found.status_code in (404, 422), found.text
            assert found.headers["content-type"] == PROBLEM
            assert "run secret" not in found.text
        as_store = await client.post("/api/v1/decrypt", json={"key_id": store_key,
                                                              "encrypted_data": stored})
        assert as_store.status_code == 404 and "no API key" in as_store.json()["detail"]
        moved = stored.replace(store_key, api_key)
        forged = await client.post("/api/v1/decrypt", json={"key_id": api_key,
                                                            "encrypted_data": moved})
        assert forged.status_code == 422 and forged.json()["code"] == "keys.unseal-failed"
        encrypt = await client.post("/api/v1/encrypt", json={"key_id": store_key,
                                                             "data": "x"})
        assert encrypt.status_code == 404


async def test_bad_requests_are_named_problems(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        key_id, other = await _key(client), await _key(client)
        token = (await client.post("/api/v1/encrypt", json={"key_id": other, "data": "d"})
                 ).json()["encrypted_data"]
        cases = [
            ({"key_id": "dk_" + "0" * 32, "encrypted_data": token}, 404, "no API key"),
            ({"key_id": "nope", "encrypted_data": token}, 404, "no API key"),
            ({"key_id": key_id, "encrypted_data": token}, 422, "encrypted with another key"),
            ({"key_id": other, "encrypted_data": token[:-3] + "AAA"}, 422, "does not open"),
            ({"key_id": other, "encrypted_data": "garbage"}, 422, "not a sealed value"),
            ({"key_id": other}, 422, "'encrypted_data' must be a string"),
            ({"key_id": other, "encrypted_data": 5}, 422, "must be a string"),
            ({"key_id": other, "encrypted_data": token, "x": 1}, 422, "unknown field 'x'"),
        ]
        for body, status, words in cases:
            found = await client.post("/api/v1/decrypt", json=body)
            assert (found.status_code, found.headers["content-type"]) == (status, PROBLEM), \
                (body, found.text)
            assert words in found.json()["detail"], found.text
        failed = await bs.store.audit_page(AuditQuery(action="keys.decrypt"))
        assert {r.entry.outcome for r in failed} == {"failure"}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.dictionaries(st.sampled_from(["key_id", "encrypted_data", "data"]),
                            st.one_of(st.text(max_size=80), st.integers(), st.none(),
                                      st.from_regex(r"bsenc:v1:dk_[0-9a-f]{32}:[A-Za-z0-9_-]{0,60}",
                                                    fullmatch=True)), max_size=3))
async def test_fuzzed_bodies_never_make_a_500(make_client: Callable[..., Any],
                                               body: dict[str, Any]) -> None:
    async with make_client() as (bs, client):
        if body.get("key_id") == "":
            body["key_id"] = await _key(client)  # a real key, with whatever else was drawn
        for path in ("/api/v1/encrypt", "/api/v1/decrypt"):
            found = await client.post(path, json=body)
            assert found.status_code < 500, found.text
