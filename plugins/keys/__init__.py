"""Field-level encryption: the sealer of stored secret values, its key providers, key
rotation and the key API (docs/security.md, "Encryption at rest")."""
