"""Reading a step's printed or returned text as JSON, strictly (NaN and Infinity refused)."""
from __future__ import annotations

import json
from typing import Any, NoReturn


def loads_strict(text: str) -> Any:
    """`json.loads`, refusing the NaN/Infinity extensions; ValueError when it is not JSON."""
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")
