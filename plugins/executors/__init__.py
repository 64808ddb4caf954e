"""The builtin step types: `python`, `shell`, `http` and `manual`."""
