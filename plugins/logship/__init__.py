"""Shipping Base Shift's log lines to a log service (Elasticsearch, OpenSearch)."""
