"""Password hashes (argon2id) and the password policy.

Hashing is deliberately slow and memory-hard, so a stolen user table is costly to attack;
verification costs the same whether the account exists or not, so response times do not
tell which names are taken. Passwords are never logged or kept beyond the call.
"""
from __future__ import annotations

import string
import unicodedata

from argon2 import PasswordHasher, Type, profiles
from argon2.exceptions import InvalidHashError, VerificationError

DEFAULTS = profiles.RFC_9106_LOW_MEMORY
"""RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes): strong, and light
enough that a small server survives a burst of logins."""

MIN_LENGTH = 12
MAX_LENGTH = 1024
"""Long passphrases are welcome (NIST 800-63B); the limit only bounds the work one request
can ask for."""

MIN_DISTINCT = 5

SEQUENCES = ("01234567890123456789", "abcdefghijklmnopqrstuvwxyz",
             "qwertyuiopasdfghjklzxcvbnm", "azertyuiopqsdfghjklmwxcvbn",
             "qwertzuiopasdfghjklyxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p")
"""Runs along the alphabet, the digits or a keyboard: length without secrecy."""

CONTEXT_WORDS = ("baseshift", "base shift")
"""NIST 800-63B: refuse passwords built on the service's name, as on the user name."""

COMMON_WORDS = frozenset({
    "password", "passw0rd", "p@ssword", "p@ssw0rd", "qwerty", "qwertyuiop", "iloveyou",
    "letmein", "welcome", "admin", "administrator", "changeme", "monkey", "dragon",
    "football", "baseball", "sunshine", "princess", "trustno", "starwars", "superman",
    "master", "secret", "login", "abc", "access", "shadow", "michael", "whatever",
    "hello", "freedom", "passwordpassword", "qwertyqwerty",
})
"""The stems of the most common leaked passwords (before their digits and punctuation):
a short list that refuses the first guesses of any attacker, not a breach corpus."""

_PADDING = string.digits + string.punctuation + string.whitespace


class Passwords:
    """argon2id hashing with configurable cost; the defaults are RFC 9106's low-memory
    profile. Raising the cost later is safe: `needs_rehash` says when a stored hash was
    made with other parameters, and the login rehashes it."""

    def __init__(self, time_cost: int = DEFAULTS.time_cost,
                 memory_cost: int = DEFAULTS.memory_cost,
                 parallelism: int = DEFAULTS.parallelism) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                                      parallelism=parallelism, hash_len=DEFAULTS.hash_len,
                                      salt_len=DEFAULTS.salt_len, type=Type.ID)
        self._dummy: str | None = None
        """Verified in place of a missing account's hash: the same parameters, the same
        cost. Made at the first verification, of any account, not at start: a hash costs
        about 0.1 s of CPU, and most processes (every CLI command) never verify one."""

    def hash(self, password: str) -> str:
        """A salted argon2id hash in PHC string format (parameters included)."""
        return self._hasher.hash(_nfkc(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`. An unknown user (`stored` None) still costs
        a full verification, against a dummy hash, so timing does not reveal accounts."""
        if self._dummy is None:  # whoever comes first, known or not: timing tells nothing
            self._dummy = self._hasher.hash("no account has this password")
        try:
            self._hasher.verify(self._dummy if stored is None else stored, _nfkc(password))
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters than the current ones (an
        unreadable hash counts as needing one)."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def password_problem(password: str, username: str) -> str | None:
    """Why `password` is refused for `username`, or None when it is acceptable. Length
    and a few known-bad shapes only, no composition rules (NIST 800-63B 3.1.1.2)."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters"
    folded = password.casefold()
    if len(set(folded)) < MIN_DISTINCT:
        return "repeats too few different characters"
    if any(folded in seq or folded in seq[::-1] for seq in SEQUENCES):
        return "is a run of the alphabet, the digits or a keyboard row"
    if _mostly_context(folded, username):
        return "is built on the user name or the service name; add more of your own"
    if folded.strip(_PADDING) in COMMON_WORDS:
        return "is one of the most common passwords"
    return None


def _mostly_context(folded: str, username: str) -> bool:
    """Whether less than the minimum length is left once the user and service names are
    taken out of the password: those are public, so they add nothing to the secret."""
    rest = folded
    for word in (username.casefold(), *CONTEXT_WORDS):
        if len(word) >= 3:
            rest = rest.replace(word, "")
    return len(rest) < MIN_LENGTH


def _nfkc(password: str) -> str:
    """One form for what looks the same (NIST 800-63B 5.1.1.2), so a password typed on
    another keyboard or system still matches."""
    return unicodedata.normalize("NFKC", password)
