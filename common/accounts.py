"""Accounts: sign-up rules, passwords and API keys.

Passwords are bcrypt hashes. API keys are random, shown once, and stored only
as a SHA-256 hash: a keyed request costs one hash and one look-up, no bcrypt.
A key has 256 bits of entropy, so an unsalted fast hash is safe for it (it is
not a password that could be guessed from a dictionary).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import bcrypt

from common import errors, logs
from common.backends import get_store
from common.config import settings
from common.store.records import Account

USERNAME_RULE = re.compile(r"[A-Za-z0-9_.-]{3,64}")
KEY_PREFIX = "icf_"
BCRYPT_WAIT = 10.0


@functools.cache
def _dummy_hash() -> bytes:
    """A real hash at the configured cost, checked when the user does not exist, so that an
    unknown user and a wrong password take the same time."""
    return bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(settings().bcrypt_rounds))


class _PasswordGate:
    """At most BCRYPT_CONCURRENCY password hashes at a time per process, and at most BCRYPT_QUEUE more waiting:
    a flood of password guesses is refused with 503 at once beyond that, so it can hold neither the cores nor
    the server's threads that API-key requests need."""

    def __init__(self, running: int, waiting: int) -> None:
        self.slots, self.max_waiting = threading.BoundedSemaphore(max(1, running)), max(0, waiting)
        self.waiting, self.lock = 0, threading.Lock()

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        busy = errors.Unavailable("Too many password checks at once. Retry in a moment, or use your API key.")
        if not self.slots.acquire(blocking=False):
            with self.lock:
                if self.waiting >= self.max_waiting:
                    raise busy
                self.waiting += 1
            try:
                if not self.slots.acquire(timeout=BCRYPT_WAIT):
                    raise busy
            finally:
                with self.lock:
                    self.waiting -= 1
        try:
            yield
        finally:
            self.slots.release()


@functools.cache
def _gate() -> _PasswordGate:
    return _PasswordGate(settings().bcrypt_concurrency, settings().bcrypt_queue)


def _bcrypt_slot() -> contextlib.AbstractContextManager[None]:
    return _gate().enter()


def hash_password(password: str) -> str:
    with _bcrypt_slot():
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(settings().bcrypt_rounds)).decode()


def check_password(password: str, password_hash: str | None) -> bool:
    candidate = password.encode()
    with _bcrypt_slot():
        if password_hash is None or len(candidate) > 72:
            bcrypt.checkpw(b"x", _dummy_hash())
            return False
        return bcrypt.checkpw(candidate, password_hash.encode())


def new_api_key() -> tuple[str, str]:
    """A fresh key and the hash that is stored for it."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_hash(key)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def validate_credentials(body: dict[str, Any]) -> tuple[str, str]:
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not USERNAME_RULE.fullmatch(username):
        raise errors.BadRequest(
            "username must be a string of 3 to 64 characters, each a letter, digit, '_', '.' or '-'.",
            code="invalid_username",
        )
    if not isinstance(password, str) or len(password) < 8:
        raise errors.BadRequest("password must be a string of at least 8 characters.", code="invalid_password")
    if len(password.encode()) > 72:
        raise errors.BadRequest("password must be at most 72 bytes (bcrypt's limit).", code="invalid_password")
    if "\x00" in password:
        raise errors.BadRequest("password must not contain NUL characters.", code="invalid_password")
    return username, password


def register(body: dict[str, Any], client_address: str) -> tuple[Account, str]:
    """Create an ordinary account; fields other than username/password (e.g. is_admin) are ignored.
    Sign-ups are limited per client address and in all, per minute (429 with Retry-After)."""
    username, password = validate_credentials(body)
    s, store = settings(), get_store()
    store.count_in_window(f"signup:{client_address}", s.signups_per_address)
    store.count_in_window("signup:*", s.signups_per_minute)
    key, hashed_key = new_api_key()
    account = get_store().create_account(username, hash_password(password), hashed_key,
                                         settings().initial_tokens)
    logs.annotate(user=account.username)
    return account, key


def rotate_key(account: Account) -> str:
    key, hashed_key = new_api_key()
    get_store().set_key(account.username, hashed_key)
    return key
