"""plugins/auth/passwords.py: argon2id hashes, the unknown-user path and the policy."""
from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher

from baseshift.plugins.auth.passwords import Passwords, password_problem

CHEAP = {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1}
"""Parameters small enough for a quick test; the defaults are checked once."""


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords(**CHEAP)


def test_a_hash_verifies_its_password_only(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "correct horse batterY")
    assert passwords.hash("correct horse battery") != stored  # salted


def test_the_defaults_are_rfc_9106_low_memory() -> None:
    assert "$m=65536,t=3,p=4$" in Passwords().hash("correct horse battery")


def test_unicode_forms_of_one_password_match(passwords: Passwords) -> None:
    composed, decomposed = "caf\u00e9 au lait chaud", "cafe\u0301 au lait chaud"
    assert passwords.verify(passwords.hash(composed), decomposed)


def test_a_damaged_hash_verifies_nothing(passwords: Passwords) -> None:
    assert not passwords.verify("$argon2id$garbage", "correct horse battery")
    assert not passwords.verify("", "correct horse battery")


def test_a_change_of_parameters_asks_for_a_rehash(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery")
    assert not passwords.needs_rehash(stored)
    stronger = Passwords(**{**CHEAP, "time_cost": 2})
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "correct horse battery")  # old hashes still log in
    assert not stronger.needs_rehash(stronger.hash("correct horse battery"))
    assert passwords.needs_rehash("not a hash")


def test_an_unknown_user_costs_a_full_verification(passwords: Passwords,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No early return for a missing account: argon2 runs as for a wrong password, with the
    same parameters, so response times do not reveal which names exist."""
    checked: list[str] = []
    original = PasswordHasher.verify

    def spy(self: PasswordHasher, stored: str | bytes, password: Any) -> bool:
        checked.append(str(stored))
        return original(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    real = passwords.hash("correct horse battery")
    assert not passwords.verify(None, "correct horse battery")
    assert not passwords.verify(real, "wrong horse battery")
    assert len(checked) == 2
    dummy_params, real_params = (s.rsplit("$", 2)[0] for s in checked)
    assert dummy_params == real_params


@pytest.mark.parametrize("first", ["known", "unknown"])
def test_no_hash_is_made_at_start_and_the_first_verification_pays_for_the_dummy_whoever(
        monkeypatch: pytest.MonkeyPatch, first: str) -> None:
    """A process that never checks a password (every CLI command) makes no argon2 hash; the
    dummy is made at the first verification, whether its account exists or not, so that
    one's time tells nothing either."""
    made: list[str] = []
    original = PasswordHasher.hash

    def spy(self: PasswordHasher, password: str | bytes, **kwargs: Any) -> str:
        made.append(str(password))
        return original(self, password, **kwargs)

    passwords = Passwords(**CHEAP)
    monkeypatch.setattr(PasswordHasher, "hash", spy)
    Passwords(**CHEAP)
    assert made == []
    stored = original(passwords._hasher, "correct horse battery")
    passwords.verify(stored if first == "known" else None, "correct horse battery")
    assert made == ["no account has this password"]
    passwords.verify(None, "correct horse battery")
    passwords.verify(stored, "correct horse battery")
    assert made == ["no account has this password"]  # once


@pytest.mark.parametrize(("password", "why"), [
    ("short pass", "at least 12"),
    ("x" * 1025, "at most 1024"),
    ("aaaaaaaaaaaaaaaa", "too few different"),
    ("abababababababab", "too few different"),
    ("123412341234", "too few different"),
    ("123456789012", "run of"),
    ("ABCDEFGHIJKLMNOP", "run of"),
    ("mnbvcxzlkjhgfdsa", "run of"),
    ("alice.smith.alice.smith", "user name"),
    ("Alice.Smith2024!", "user name"),
    ("baseshift-2024!!", "service name"),
    ("Password1234!", "most common"),
    ("iloveyou2024!!", "most common"),
])
def test_the_policy_refuses(password: str, why: str) -> None:
    problem = password_problem(password, "alice.smith")
    assert problem is not None and why in problem


@pytest.mark.parametrize("password", [
    "correct horse battery staple",
    "123467890512",  # digits only is fine: length, not composition
    "Ünïcödé pässwörd ☃",
    "alice.smith and a long phrase of my own",
])
def test_the_policy_accepts(password: str) -> None:
    assert password_problem(password, "alice.smith") is None
