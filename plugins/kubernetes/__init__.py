"""The `kubernetes` step type: a job runs as a Pod."""
