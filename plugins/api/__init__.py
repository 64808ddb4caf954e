"""The REST API: workflows, runs and analytics."""
