"""The command line as a client of a Base Shift server: signing in (`baseshift login`), the
stored credentials, and the HTTP client other families' commands use with `--server`."""
