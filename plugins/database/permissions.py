"""The database admin API's permissions (only `admin` holds them by default)."""
from __future__ import annotations

from baseshift.core.access import Permission

DATABASE_READ = Permission("database:read", "see the database's performance and slowest "
                           "statements")
DATABASE_ADMIN = Permission("database:admin", "have the database explain a read-only query "
                            "(with analyze: run it in a read-only transaction rolled back)")

