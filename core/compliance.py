"""Compliance controls: each a fact about the live installation, checked when the report is
asked for (`GET /api/v1/compliance/report`), never typed in.

Plugins contribute the controls they can judge through the `compliance_controls` hook (auth:
MFA and admins; keys: key ages and rotation; audit: the chain; retention: policies applied;
...). A control names the framework references it serves; the report groups them per
framework (GDPR, HIPAA, SOC 2).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ControlStatus = Literal["implemented", "pending"]
"""`implemented`: the evidence shows the control in force; `pending`: it is not (yet)."""

FRAMEWORKS = ("GDPR", "HIPAA", "SOC 2")


@dataclass(frozen=True, slots=True)
class Control:
    """One control as found now: `id` ("auth.mfa-admin"), what it asks (`title`), whether it
    holds (`status`), the observed facts behind that (`evidence`, one sentence a reviewer
    can check), and the references it serves per framework ({"GDPR": ("Article 32",),
    "HIPAA": ("164.312(d)",), "SOC 2": ("CC6.1",)})."""

    id: str
    title: str
    status: ControlStatus
    evidence: str
    frameworks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
