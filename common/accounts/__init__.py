"""Accounts: sign-up, API keys, console sessions, passwords, administrators and billing (the token
charge of a request)."""
