"""The job template store: its backends and its faces (REST, GraphQL, CLI)."""
