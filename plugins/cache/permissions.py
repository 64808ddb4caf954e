"""The cache API's permissions (only `admin` holds them by default)."""
from __future__ import annotations

from baseshift.core.access import Permission

CACHE_READ = Permission("cache:read", "see the cache's counters and list its keys (never "
                        "its values)")
CACHE_ADMIN = Permission("cache:admin", "drop cache entries: by key, by key prefix or all")
