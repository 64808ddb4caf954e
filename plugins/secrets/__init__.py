"""Where `${secret.X}` values come from."""
