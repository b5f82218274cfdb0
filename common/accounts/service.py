"""Accounts: sign-up rules, passwords and API keys.

Passwords are bcrypt hashes (common/accounts/passwords.py). API keys are random, shown once, and stored only
as a SHA-256 hash: a keyed request costs one hash and one look-up, no bcrypt.
A key has 256 bits of entropy, so an unsalted fast hash is safe for it (it is
not a password that could be guessed from a dictionary).

Signing in to the web console opens a session: a key of its own, revocable at
sign-out, so the account's API key (the CLI's, the scripts') keeps working.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import Any

from common.accounts import passwords
from common.accounts.bodies import Credentials
from common.adapters.deps import Deps
from common.core import bodies, errors, logs
from common.records.accounts import key_record
from common.records.records import Account

KEY_PREFIX = "icf_"
SESSION = "session"
SESSION_SECONDS = 12 * 3600.0  # a console session key ends with the working day, if not signed out before


def key_prefix(key: str) -> str:
    """The first characters of a key, kept in its record so a person can tell their keys apart."""
    return key[:len(KEY_PREFIX) + 4]


def new_api_key() -> tuple[str, str]:
    """A fresh key and the hash that is stored for it."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_hash(key)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def validate_credentials(body: Mapping[str, Any]) -> tuple[str, str]:
    credentials = bodies.convert(Credentials, body)
    return credentials.username, credentials.password


def register(body: dict[str, Any], network: str, deps: Deps) -> tuple[Account, str]:
    """Create an ordinary account; fields other than username/password (e.g. is_admin) are ignored.
    Sign-ups are limited per client network and in all, per minute (429 with Retry-After); one refused a
    password-hash slot (503) is not counted, since it was never attempted."""
    username, password = validate_credentials(body)
    s, store = deps.settings.accounts, deps.store
    if s.admin_username and username == s.admin_username:  # the bootstrap's admin: never anyone's sign-up
        raise errors.Conflict(f"The username {username!r} is taken. Choose another one.", code="username_taken")
    password_hash = passwords.hash_password(
        password, admit=lambda: store.admit_signup(network, s.signups_per_address, s.signups_per_minute))
    key, hashed_key = new_api_key()
    account = store.create_account(username, password_hash, hashed_key, s.initial_tokens, prefix=key_prefix(key))
    logs.annotate(user=account.username)
    return account, key


def rotate_key(account: Account, deps: Deps) -> str:
    """A new API key for the account; the previous one stops working (its console sessions do not)."""
    key, hashed_key = new_api_key()
    deps.store.set_key(account.username, hashed_key, prefix=key_prefix(key))
    return key


def open_session(account: Account, deps: Deps) -> tuple[str, dict[str, Any]]:
    """A new session key for one console sign-in, and its record: the account's API key is left as it is."""
    key, hashed_key = new_api_key()
    record = key_record(account.username, key_prefix(key), SESSION, expires=time.time() + SESSION_SECONDS)
    deps.store.add_key(hashed_key, record)
    return key, record


def close_session(account: Account, session_id: str, deps: Deps) -> None:
    """Revoke one of the account's session keys (sign-out); another account's or an unknown id is a 404."""
    if not deps.store.revoke_key(account.username, session_id, SESSION):
        raise errors.NotFound("There is no such session of yours: it was signed out or has expired.",
                              code="unknown_session")
