"""The in-process cache (the Redis cache is in `plugins.redis`)."""
