"""Checks shared by the notifiers for the targets a rule names (each mistake an InputError
naming the field, `notify[0].url`)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from baseshift.core.errors import InputError

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def bad(field: str, message: str, hint: str | None = None) -> InputError:
    return InputError(f"field '{field}' {message}", hint=hint, details={"field": field})


def only(target: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(target) - allowed)
    if unknown:
        raise bad(f"{where}.{unknown[0]}", "is not a field of this notifier",
                  hint=f"its fields: {', '.join(sorted(allowed))}")


def secret_name(value: Any, field: str) -> str:
    """The name of a secret (resolved through `resolve_secret` when used, never stored)."""
    if not isinstance(value, str) or not SECRET_NAME.fullmatch(value):
        raise bad(field, "must name a secret (letters, digits, '_', '.', '-'), not hold one",
                  hint="store the value as a secret, e.g. BASESHIFT_SECRET_<NAME>")
    return value


def one_line(text: str, limit: int = 200) -> str:
    """`text` with every control character (CR and LF included) made a space, cut to
    `limit`: what goes into a header cannot start another one."""
    return CONTROL.sub(" ", text)[:limit]
