"""Admission of new runs (placeholder until keyed run limits land): every run starts."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .plan import Plan

if TYPE_CHECKING:
    from .app import BaseShift


class Admission:
    def __init__(self, baseshift: BaseShift) -> None:
        self.bs = baseshift

    async def start(self, plan: Plan, inputs: dict[str, Any]) -> str:
        return await self.bs.engine.submit(plan, inputs)

    async def startup(self) -> None:
        return None
