"""Which field of a five-field cron expression is wrong, and why, for the schedule message.

croniter only says whether an expression is valid; "the hour field '25' is out of range
0-23" is what the author needs to fix it.
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Field(NamedTuple):
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


FIELDS = (Field("minute", 0, 59), Field("hour", 0, 23), Field("day-of-month", 1, 31),
          Field("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                 "sep", "oct", "nov", "dec")),
          Field("day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")))
_PART = re.compile(r"(?:\*|(?P<first>\w+)(?:-(?P<last>\w+))?)(?:/(?P<step>\d+))?", re.ASCII)
"""A field's part, ASCII only: `int()` reads other digits (`²`) that cron does not."""


def explain(cron: str) -> str | None:
    """What is wrong with the first bad field of `cron` (five fields), or None if each field
    reads well on its own (then the expression as a whole is the problem)."""
    for field, text in zip(FIELDS, cron.split(), strict=False):
        problem = _field_problem(field, text)
        if problem is not None:
            return f"the {field.name} field '{text}' {problem}"
    return None


def _field_problem(field: Field, text: str) -> str | None:
    for part in text.split(","):
        m = _PART.fullmatch(part)
        if m is None:
            return "is not a value, a range (1-5), a list (1,3) or a step (*/15)"
        for value in (m["first"], m["last"]):
            if value is not None and _value(field, value) is None:
                return _out_of_range(field, value)
        if m["step"] is not None and int(m["step"]) == 0:
            return "has a step of 0"
    return None


def _value(field: Field, text: str) -> int | None:
    if text.lower() in field.names:
        return field.names.index(text.lower()) + (field.low if field.name == "month" else 0)
    if _number(text) and field.low <= int(text) <= field.high:
        return int(text)
    return None


def _out_of_range(field: Field, text: str) -> str:
    if not _number(text):
        return f"has '{text}', which is not a number" + (
            f" or a name like {field.names[0]}" if field.names else "")
    return f"has {text}, outside {field.low}-{field.high}"


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit()
