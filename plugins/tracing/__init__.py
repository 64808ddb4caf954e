"""OpenTelemetry traces of requests, runs and attempts (docs/operations.md "Traces")."""
