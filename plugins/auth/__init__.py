"""Accounts, tokens, roles and the authenticate/authorize hooks (core/access.py)."""
