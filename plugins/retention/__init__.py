"""Data retention: the policies of `[plugins.retention]` applied daily by the cron leader and on
demand (API, `baseshift apply-retention`), legal hold, erasure of a run, and the compliance
controls that show them (core/retention.py holds the policies)."""
