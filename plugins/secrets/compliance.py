"""The masking control of the compliance report (`compliance_controls`): whether secret
values are replaced by `***` in what jobs leave behind (the `mask_secrets` setting, on
unless turned off, core/attempts.py)."""
from __future__ import annotations

from baseshift.core.appface import App
from baseshift.core.compliance import Control
from baseshift.core.hookspecs import hookimpl
from baseshift.core.masking import MASK, MIN_LENGTH

MASKING = {"GDPR": ("Article 32", "Article 25"), "HIPAA": ("164.312(a)(1)", "164.312(c)(1)"),
           "SOC 2": ("CC6.1", "C1.1")}


@hookimpl
def compliance_controls(baseshift: App) -> list[Control]:
    on = baseshift.settings.mask_secrets
    evidence = (f"secret values of {MIN_LENGTH}+ characters, and their encodings, become "
                f"{MASK} in every job's log, output and error (mask_secrets = true)" if on
                else "masking is OFF (mask_secrets = false): secrets a step prints are stored "
                     "and shown in clear")
    return [Control("secrets.masking", "Secrets masked in job logs, outputs and errors",
                    "implemented" if on else "pending", evidence, MASKING)]
