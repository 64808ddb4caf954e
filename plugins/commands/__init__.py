"""The command line's builtin commands, each family of them a plugin like any other
(`baseshift serve`, `worker` and `templates` come with their own families)."""
