"""Envelope encryption (plugins/keys/envelope.py) with the local key file provider: values
round-trip, a data key seals many values, and every token that must not open raises
SealError (never another exception)."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseshift.core.errors import ConfigError, SealError
from baseshift.core.sealing import Sealer, is_sealed
from baseshift.plugins.keys.envelope import API, Envelope, StoreSealer, Token
from baseshift.plugins.keys.keyfile import LocalKeyFile
from baseshift.plugins.storage.memory import MemoryStateStore


def sealer_in(folder: Path, **options: int) -> StoreSealer:
    envelope = Envelope(MemoryStateStore(), LocalKeyFile(folder / "keys.json"))
    return StoreSealer(envelope, **options)


async def test_values_round_trip_and_share_a_data_key(tmp_path: Path) -> None:
    sealer = sealer_in(tmp_path)
    assert isinstance(sealer, Sealer)
    values = ["", "hunter2", "ünïcødé ✓", "x" * 10_000]
    tokens = [await sealer.seal(v) for v in values]
    assert all(is_sealed(t) and t.startswith("bsenc:v1:dk_") for t in tokens)
    assert [await sealer.unseal(t) for t in tokens] == values
    assert len({Token.parse(t).key_id for t in tokens}) == 1
    assert await sealer.envelope.store.data_key_counts() == {  # type: ignore[attr-defined]
        (await sealer.envelope.provider.current()).id: 1}
    assert await sealer.seal("same") != await sealer.seal("same")  # a fresh nonce each time


async def test_the_data_key_is_renewed_after_its_uses(tmp_path: Path) -> None:
    sealer = sealer_in(tmp_path, renew_uses=2)
    tokens = [await sealer.seal(str(n)) for n in range(5)]
    assert len({Token.parse(t).key_id for t in tokens}) == 3
    fresh = StoreSealer(Envelope(sealer.envelope.store, LocalKeyFile(tmp_path / "keys.json")))
    assert [await fresh.unseal(t) for t in tokens] == [str(n) for n in range(5)]


async def test_a_tampered_token_does_not_open(tmp_path: Path) -> None:
    sealer = sealer_in(tmp_path)
    token = await sealer.seal("secret")
    head, _, data = token.rpartition(":")
    flipped = data[:-2] + ("A" if data[-2] != "A" else "B") + data[-1]
    with pytest.raises(SealError, match="does not open"):
        await sealer.unseal(f"{head}:{flipped}")


async def test_a_token_moved_to_another_key_or_purpose_does_not_open(tmp_path: Path) -> None:
    sealer = sealer_in(tmp_path, renew_uses=1)
    first, second = await sealer.seal("a"), await sealer.seal("b")
    moved = f"bsenc:v1:{Token.parse(second).key_id}:{first.rpartition(':')[2]}"
    with pytest.raises(SealError, match="does not open"):
        await sealer.unseal(moved)
    api_key = await sealer.envelope.new_key(API)
    found = await sealer.envelope.key(api_key.id)
    assert found is not None
    api_token = Envelope.seal_with(api_key.id, API, found[1], "api data")
    with pytest.raises(SealError, match="does not seal store values"):
        await sealer.unseal(api_token)


@pytest.mark.parametrize("token", [
    "plain", "bsenc:", "bsenc:v1:", "bsenc:v2:dk_" + "0" * 32 + ":AAAA",
    "bsenc:v1:dk_" + "0" * 32 + ":AAAA", "bsenc:v1:dk_" + "0" * 32 + ":" + "A" * 40,
    "bsenc:v1:dk_" + "0" * 32 + ":A" * 3, "bsenc:v1:dk_" + "0" * 32 + ":" + "A" * 41,
    "bsenc:v1:nope:" + "A" * 40, "bsenc:v1:dk_" + "0" * 32 + ":" + "!" * 40,
])
async def test_malformed_or_unknown_tokens_raise_seal_error(tmp_path: Path, token: str) -> None:
    with pytest.raises(SealError):
        await sealer_in(tmp_path).unseal(token)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(text=st.one_of(st.text(), st.from_regex(r"bsenc:v1:dk_[0-9a-f]{32}:[A-Za-z0-9_=-]*",
                                               fullmatch=True)))
async def test_any_text_is_a_seal_error_or_a_value(tmp_path: Path, text: str) -> None:
    sealer = sealer_in(tmp_path)
    try:
        await sealer.unseal(text)
    except SealError:
        pass


async def test_a_retired_kek_no_longer_unwraps(tmp_path: Path) -> None:
    sealer = sealer_in(tmp_path)
    token = await sealer.seal("old")
    provider = sealer.envelope.provider
    old = await provider.current()
    await provider.create()
    await provider.retire([old.id])
    fresh = StoreSealer(Envelope(sealer.envelope.store, provider))
    with pytest.raises(SealError, match="is retired"):
        await fresh.unseal(token)


async def test_the_key_file_is_made_private_and_refused_when_others_can_read_it(
        tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys.json"
    provider = LocalKeyFile(path)
    kek = await provider.current()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert kek.id.startswith("local-") and [k.id for k in await provider.keks()] == [kek.id]
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="can be read or written by others") as caught:
        await LocalKeyFile(path).current()
    assert caught.value.hint == f"chmod 600 {path}"


async def test_a_key_file_of_another_user_is_refused(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys.json"
    await LocalKeyFile(path).current()
    monkeypatch.setattr(os, "getuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(ConfigError, match="belongs to user id") as caught:
        await LocalKeyFile(path).current()
    assert "chown" in (caught.value.hint or "")


async def test_a_provider_sees_keks_another_process_added(tmp_path: Path) -> None:
    """The server's provider reads the file again after `keys rotate` changed it."""
    path = tmp_path / "keys.json"
    server, cli = LocalKeyFile(path), LocalKeyFile(path)
    first = await server.current()
    new = await cli.create()
    assert (await server.current()).id == new.id != first.id
    assert {k.id for k in await server.keks()} == {first.id, new.id}


async def test_the_key_file_is_made_at_the_first_start(
        make_baseshift: Any, tmp_path: Path) -> None:
    async with make_baseshift(store="sqlite"):
        path = tmp_path / "data" / "keys.json"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="can be read or written by others"):
        async with make_baseshift(store="sqlite"):
            pass


async def test_bad_options_stop_the_start(make_baseshift: Any) -> None:
    with pytest.raises(ConfigError, match="'plugins.keys.provider' has value 'hsm'"):
        async with make_baseshift(extra={"keys": {"provider": "hsm"}}):
            pass
    with pytest.raises(ConfigError, match="unknown key"):
        async with make_baseshift(extra={"keys": {"rotation": 5}}):
            pass


async def test_opened_data_keys_are_cached_within_a_bound(tmp_path: Path) -> None:
    store = MemoryStateStore()
    envelope = Envelope(store, LocalKeyFile(tmp_path / "keys.json"), cache_size=2)
    sealer = StoreSealer(envelope, renew_uses=1)
    tokens = {await sealer.seal(str(n)): str(n) for n in range(4)}
    assert len(envelope._cache) == 2  # noqa: SLF001 - the bound is the point
    assert {t: await sealer.unseal(t) for t in tokens} == tokens
    assert len(envelope._cache) == 2  # noqa: SLF001


async def test_the_data_key_is_renewed_after_its_time(tmp_path: Path) -> None:
    sealer = sealer_in(tmp_path)
    sealer.renew_after = 0.0
    first, second = await sealer.seal("a"), await sealer.seal("b")
    assert Token.parse(first).key_id != Token.parse(second).key_id


def test_a_store_that_cannot_keep_data_keys_is_named() -> None:
    from baseshift.plugins.keys.service import data_keys_of

    class Bare:
        name = "bare"

    with pytest.raises(ConfigError, match="store 'bare' cannot keep data keys"):
        data_keys_of(Bare())  # type: ignore[arg-type]
