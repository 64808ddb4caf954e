"""A job's output must be JSON every store accepts: NaN and infinities are refused."""
from __future__ import annotations

from typing import Any

import pytest

from baseshift.core.attempts import _check_json
from baseshift.core.errors import ExecutionError


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1, float("-inf")],
                                   {"x": {"y": float("nan")}}, {1, 2}])
def test_outputs_that_are_not_json_are_refused(value: Any) -> None:
    with pytest.raises(ExecutionError, match="the job's output is not JSON"):
        _check_json(value)


@pytest.mark.parametrize("value", [None, True, 0, 1.5, "text", [1, "a"], {"a": [None, 2.0]}])
def test_json_outputs_pass(value: Any) -> None:
    _check_json(value)
