"""Engine tests share the recording job functions of `engine_samples`; start each clean."""
from __future__ import annotations

import engine_samples
import pytest


@pytest.fixture(autouse=True)
def _reset_samples() -> None:
    engine_samples.reset()
