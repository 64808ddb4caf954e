"""The permission the compliance report needs."""
from __future__ import annotations

from baseshift.core.access import Permission

COMPLIANCE_READ = Permission("compliance:read", "read the compliance report and its exports")
