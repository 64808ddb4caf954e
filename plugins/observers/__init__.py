"""Observers of engine events: the console, the terminal progress, the live hub."""
