"""The Vault key provider and KV secrets (plugins/keys/vault.py) at the hvac boundary: a
stand-in server answers Vault's documented HTTP shapes (tests/plugins/keys/vault_fake.py).
The real-server variant runs when VAULT_ADDR (and VAULT_TOKEN) are set, and skips with
that reason otherwise."""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from baseshift.core.errors import ConfigError, SealError, StoreError
from baseshift.plugins.keys.envelope import Envelope, StoreSealer
from baseshift.plugins.keys.rotation import rotate
from baseshift.plugins.keys.service import STASH_KEY
from baseshift.plugins.keys.settings import VaultSettings
from baseshift.plugins.keys.vault import VaultTransit, vault_client
from baseshift.plugins.storage.memory import MemoryStateStore
from tests.plugins.keys.vault_fake import TOKEN, FakeVault, fake_vault

NO_SERVER = "no Vault server: set VAULT_ADDR and VAULT_TOKEN (transit and KV v2 enabled)"


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    with fake_vault() as server:
        yield server


def provider_for(url: str, key_name: str = "baseshift") -> VaultTransit:
    options = VaultSettings(address=url, key_name=key_name)
    return VaultTransit(vault_client(options), options)


async def _round_trip_and_rotation(provider: VaultTransit) -> None:
    """What both the stand-in and a real Vault must do."""
    store = MemoryStateStore()
    sealer = StoreSealer(Envelope(store, provider), renew_uses=1)
    tokens = {await sealer.seal(f"v{n}"): f"v{n}" for n in range(3)}
    first = await provider.current()
    assert first.id.startswith(f"vault:{provider.options.key_name}:v")
    old = await store.data_keys_not_under("none", 10)
    done = await rotate(store, provider, 2)
    assert done.kek_id != first.id and done.retired == (first.id,) and done.rewrapped == 3
    assert await store.data_key_counts() == {done.kek_id: 3}
    fresh = StoreSealer(Envelope(store, provider))
    assert {t: await fresh.unseal(t) for t in tokens} == tokens
    with pytest.raises(SealError):  # the old wrapping no longer opens: its version retired
        await provider.unwrap(old[0].kek_id, old[0].wrapped)


async def test_data_keys_are_wrapped_unwrapped_and_rotated_by_transit(
        vault: FakeVault) -> None:
    await _round_trip_and_rotation(provider_for(vault.url))
    paths = [(m, p) for m, p, _ in vault.seen]
    assert ("POST", "/v1/transit/keys/baseshift") in paths  # made on first use
    assert ("POST", "/v1/transit/keys/baseshift/rotate") in paths
    assert paths.count(("POST", "/v1/transit/rewrap/baseshift")) == 3
    assert ("POST", "/v1/transit/keys/baseshift/config") in paths
    assert vault.keys["baseshift"].min_decryption_version == 2
    assert {token for _, _, token in vault.seen} == {TOKEN}


async def test_a_tampered_or_foreign_wrapping_is_a_seal_error(vault: FakeVault) -> None:
    provider = provider_for(vault.url)
    kek_id, wrapped = await provider.wrap(b"k" * 32)
    with pytest.raises(SealError, match="Vault refused"):
        await provider.unwrap(kek_id, wrapped[:-4] + "AAAA")
    with pytest.raises(SealError, match="is not Vault ciphertext"):
        await provider.unwrap("vault:baseshift:v9", wrapped)
    with pytest.raises(SealError, match="not a version of Vault transit key"):
        await provider.unwrap("local-abc", wrapped)


async def test_a_refused_token_is_named_without_the_token(
        vault: FakeVault, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.wrong-token")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError, match="refused the token") as caught:
        await provider_for(vault.url).wrap(b"k" * 32)
    assert "s.wrong-token" not in str(caught.value) and "s.wrong-token" not in caplog.text


def test_no_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="VAULT_TOKEN is not set"):
        vault_client(VaultSettings(address="http://127.0.0.1:1"))


async def test_the_application_seals_with_vault_when_chosen(
        vault: FakeVault, make_baseshift: Callable[..., Any]) -> None:
    extra = {"keys": {"provider": "vault", "vault": {"address": vault.url,
                                                     "key_name": "apps"}}}
    async with make_baseshift(extra=extra) as bs:
        sealer = bs.hooks.sealer()
        token = await sealer.seal("db password")
        assert await sealer.unseal(token) == "db password"
        assert bs.stash[STASH_KEY].provider.name == "vault"
        assert "apps" in vault.keys
        controls = {c.id: c for c in await bs.hooks.compliance_controls()}
        assert "by the vault key provider" in controls["keys.at-rest"].evidence


async def test_secrets_are_read_from_kv_v2(vault: FakeVault,
                                           make_baseshift: Callable[..., Any]) -> None:
    vault.kv["secret/ci/DB_PASSWORD"] = {"value": "s3cret", "user": "app"}
    extra = {"keys": {"vault": {"address": vault.url, "kv_mount": "secret",
                                "kv_prefix": "ci/"}}}
    async with make_baseshift(extra=extra) as bs:
        assert await bs.hooks.resolve_secret("DB_PASSWORD") == "s3cret"
        assert await bs.hooks.resolve_secret("NOT_THERE_IN_VAULT_OR_ENV") is None
        assert ("GET", "/v1/secret/data/ci/DB_PASSWORD", TOKEN) in vault.seen


async def test_secrets_stay_with_the_environment_without_a_kv_mount(
        vault: FakeVault, make_baseshift: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_FROM_ENV", "env value")
    async with make_baseshift(extra={"keys": {"vault": {"address": vault.url}}}) as bs:
        assert await bs.hooks.resolve_secret("FROM_ENV") == "env value"
    assert vault.seen == []


async def test_a_real_vault_wraps_and_rotates() -> None:
    address = os.environ.get("VAULT_ADDR")
    if not address or not os.environ.get("VAULT_TOKEN"):
        pytest.skip(NO_SERVER)
    name = f"baseshift-test-{uuid.uuid4().hex[:8]}"
    await _round_trip_and_rotation(provider_for(address, name))


async def test_a_secret_name_never_climbs_out_of_the_prefix(
        vault: FakeVault, make_baseshift: Callable[..., Any]) -> None:
    vault.kv["secret/other"] = {"value": "not yours"}
    extra = {"keys": {"vault": {"address": vault.url, "kv_mount": "secret",
                                "kv_prefix": "ci/"}}}
    async with make_baseshift(extra=extra) as bs:
        assert await bs.hooks.resolve_secret("../other") is None
    assert not any("other" in path for _, path, _ in vault.seen)
