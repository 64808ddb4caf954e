"""The key plugin's compliance controls follow the live keys: an old KEK, an unfinished
rotation and the sealer in force each show in the report."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baseshift.core.compliance import Control
from baseshift.core.hookspecs import hookimpl
from baseshift.plugins.keys.rotation import rotate, rotation_target
from baseshift.plugins.keys.service import STASH_KEY


async def _controls(bs: Any) -> dict[str, Control]:
    return {c.id: c for c in await bs.hooks.compliance_controls() if c.id.startswith("keys.")}


def _age_key_file(path: Path, days: float) -> None:
    data = json.loads(path.read_text())
    for kek in data["keks"]:
        kek["created_at"] = time.time() - days * 86400
    path.write_text(json.dumps(data))


async def test_an_old_kek_flips_kek_age_until_a_rotation(
        make_baseshift: Callable[..., Any], tmp_path: Path) -> None:
    async with make_baseshift(extra={"keys": {"kek_max_age_days": 90}}) as bs:
        found = await _controls(bs)
        assert found["keys.kek-age"].status == "implemented"
        assert "is 0.0 days old (limit 90)" in found["keys.kek-age"].evidence
        assert found["keys.kek-age"].frameworks["HIPAA"] == ("164.312(a)(2)(iv)",)
        _age_key_file(tmp_path / "data" / "keys.json", 120)
        aged = (await _controls(bs))["keys.kek-age"]
        assert aged.status == "pending" and "is 120.0 days old (limit 90)" in aged.evidence
        keys = bs.stash[STASH_KEY]
        await rotate(keys.store, keys.provider, 10)
        assert (await _controls(bs))["keys.kek-age"].status == "implemented"


async def test_an_unfinished_rotation_flips_the_rotation_control(
        make_baseshift: Callable[..., Any]) -> None:
    async with make_baseshift() as bs:
        assert (await _controls(bs))["keys.rotation"].evidence == "no rotation has run yet"
        await bs.hooks.sealer().seal("x")
        keys = bs.stash[STASH_KEY]
        target, _ = await rotation_target(keys.store, keys.provider)
        pending = (await _controls(bs))["keys.rotation"]
        assert pending.status == "pending"
        assert f"the rotation to {target} started" in pending.evidence
        assert "unfinished: 0/1 data keys re-wrapped" in pending.evidence
        await rotate(keys.store, keys.provider, 10)
        done = (await _controls(bs))["keys.rotation"]
        assert done.status == "implemented"
        assert done.evidence.startswith(f"the last rotation, to {target}, finished ")


class _OtherSealer:
    async def seal(self, plaintext: str) -> str:
        return "bsenc:other:" + plaintext

    async def unseal(self, sealed: str) -> str:
        return sealed.removeprefix("bsenc:other:")


class _OtherKeys:
    sealer = _OtherSealer()

    @hookimpl
    def provide_sealer(self) -> _OtherSealer:
        return self.sealer


async def test_at_rest_is_claimed_only_while_this_plugin_seals(
        make_baseshift: Callable[..., Any]) -> None:
    async with make_baseshift() as bs:
        at_rest = (await _controls(bs))["keys.at-rest"]
        assert at_rest.status == "implemented"
        assert "sealed with AES-256-GCM" in at_rest.evidence and "file key provider" \
            in at_rest.evidence
        assert at_rest.frameworks == {"GDPR": ("Article 32",), "HIPAA": ("164.312(a)(2)(iv)",),
                                      "SOC 2": ("CC6.1", "CC6.7")}
    other = _OtherKeys()
    async with make_baseshift(plugins=(other,)) as bs:
        assert bs.hooks.sealer() is other.sealer
        assert "keys.at-rest" not in await _controls(bs)
