"""The key plugin's compliance controls, each computed from the live keys: the current
key-encryption key's age, rotations left unfinished, and how secret values are sealed."""
from __future__ import annotations

import time
from typing import Any

from baseshift.core.compliance import Control

from .rotation import status
from .service import Keys

AT_REST = {"GDPR": ("Article 32",), "HIPAA": ("164.312(a)(2)(iv)",),
           "SOC 2": ("CC6.1", "CC6.7")}
KEY_MANAGEMENT = {"GDPR": ("Article 32",), "HIPAA": ("164.312(a)(2)(iv)",),
                  "SOC 2": ("CC6.1",)}


async def controls(keys: Keys, sealer_is_ours: bool) -> list[Control]:
    """keys.kek-age, keys.rotation and (when this plugin seals) keys.at-rest."""
    found = await status(keys.store, keys.provider)
    out = [_kek_age(found, keys.settings.kek_max_age_days), _rotation(found)]
    if sealer_is_ours:
        out.append(Control(
            "keys.at-rest", "Stored secret values are encrypted", "implemented",
            f"secret values are sealed with AES-256-GCM under {found['data_keys']} data "
            f"keys wrapped by the {found['provider']} key provider's key-encryption key "
            f"{found['current']}", AT_REST))
    return out


def _kek_age(found: dict[str, Any], max_days: float) -> Control:
    current = next(k for k in found["keks"] if k["current"])
    age = max(0.0, time.time() - current["created_at"]) / 86400
    holds = age <= max_days
    return Control(
        "keys.kek-age", f"The key-encryption key is younger than {max_days:g} days",
        "implemented" if holds else "pending",
        f"the current key-encryption key {current['id']} is {age:.1f} days old (limit "
        f"{max_days:g}){'' if holds else '; run `baseshift keys rotate`'}", KEY_MANAGEMENT)


def _rotation(found: dict[str, Any]) -> Control:
    rotation, last = found["rotation"], found["last_rotation"]
    if rotation is not None:
        return Control(
            "keys.rotation", "No key rotation is left unfinished", "pending",
            f"the rotation to {rotation['kek_id']} started {_when(rotation['started_at'])} is "
            f"unfinished: {rotation['rewrapped']}/{rotation['total']} data keys re-wrapped",
            KEY_MANAGEMENT)
    evidence = ("no rotation has run yet" if last is None else
                f"the last rotation, to {last['kek_id']}, finished {_when(last['finished_at'])}")
    return Control("keys.rotation", "No key rotation is left unfinished", "implemented",
                   evidence, KEY_MANAGEMENT)


def _when(at: Any) -> str:
    if not isinstance(at, (int, float)):
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
