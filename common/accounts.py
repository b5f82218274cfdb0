"""Accounts: sign-up rules, passwords, API keys, authentication and refills.

Passwords are bcrypt hashes. API keys are random, shown once, and stored only
as a SHA-256 hash: a keyed request costs one hash and one look-up, no bcrypt.
A key has 256 bits of entropy, so an unsalted fast hash is safe for it (it is
not a password that could be guessed from a dictionary).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import re
import secrets
from typing import Any

import bcrypt
import flask

from common import errors
from common.config import settings
from common.store import Account, get_store

USERNAME_RULE = re.compile(r"[A-Za-z0-9_.-]{3,64}")
KEY_PREFIX = "icf_"
MAX_REFILL = 1_000_000


@functools.cache
def _dummy_hash() -> bytes:
    """A real hash at the configured cost, checked when the user does not exist, so that an
    unknown user and a wrong password take the same time."""
    return bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(settings().bcrypt_rounds))


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(settings().bcrypt_rounds)).decode()


def check_password(password: str, password_hash: str | None) -> bool:
    candidate = password.encode()
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


def register(body: dict[str, Any]) -> tuple[Account, str]:
    """Create an ordinary account; fields other than username/password (e.g. is_admin) are ignored."""
    username, password = validate_credentials(body)
    key, hashed_key = new_api_key()
    account = get_store().create_account(username, hash_password(password), hashed_key,
                                         settings().initial_tokens)
    return account, key


def rotate_key(account: Account) -> str:
    key, hashed_key = new_api_key()
    get_store().set_key(account.username, hashed_key)
    return key


# -- authentication ------------------------------------------------------------------


def _by_password(username: Any, password: Any) -> Account:
    if not isinstance(username, str) or not isinstance(password, str):
        raise errors.Unauthorized("username and password must be strings.")
    account = get_store().get_account(username) if USERNAME_RULE.fullmatch(username) else None
    if not check_password(password, account.password_hash if account else None) or account is None:
        raise errors.Unauthorized("Wrong username or password.", code="invalid_credentials")
    return account


def _by_key(key: str) -> Account:
    account = get_store().account_by_key(key_hash(key.strip())) if key.startswith(KEY_PREFIX) else None
    if account is None:
        raise errors.Unauthorized(
            "The API key is not valid. Use the key shown at registration, or get a new one with POST /api-key.",
            code="invalid_api_key",
        )
    return account


def authenticate(request: flask.Request, body: dict[str, Any] | None = None, *,
                 allow_key: bool = True) -> Account:
    """The account behind a request: Bearer key, HTTP Basic, or username/password in the JSON body."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        if not allow_key:
            raise errors.Unauthorized("This needs your password, not an API key: use HTTP Basic or "
                                      "username and password in the JSON body.")
        return _by_key(value)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.Unauthorized("The Basic authorization header is malformed.") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise errors.Unauthorized("The Basic authorization header must hold username:password.")
        return _by_password(username, password)
    if header:
        raise errors.Unauthorized("Unsupported Authorization scheme; use Bearer <api key> or Basic.")
    if body and ("username" in body or "password" in body):
        return _by_password(body.get("username"), body.get("password"))
    how = "Authorization: Bearer <api key>, HTTP Basic, or" if allow_key else "HTTP Basic or"
    raise errors.Unauthorized(f"Authentication required: send {how} username and password in the JSON body.")


# -- administration --------------------------------------------------------------------


def parse_refill(body: dict[str, Any]) -> tuple[str, int]:
    """The account and amount of a refill, in the contract's form or the seed's (`user`, `refill`)."""
    admin_supplied_creds = "user" in body or "refill" in body
    target = body.get("user") if admin_supplied_creds else body.get("username")
    amount = body.get("refill") if admin_supplied_creds else body.get("amount")
    if not isinstance(target, str) or not target:
        raise errors.BadRequest("Name the account to refill: {\"username\": ..., \"amount\": n}.")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_REFILL:
        raise errors.BadRequest(f"amount must be a whole number from 1 to {MAX_REFILL}.", code="invalid_amount")
    return target, amount


def refill(admin: Account, username: str, amount: int) -> int:
    if not admin.is_admin:
        raise errors.Forbidden("Only administrators can refill accounts.")
    store = get_store()
    if store.get_account(username) is None:
        raise errors.NotFound(f"There is no account named {username!r}.", code="unknown_user")
    return store.refill(username, amount)


def ensure_admin(username: str, password: str | None) -> Account:
    """Create an admin, or promote an existing account; used by the operator command and the bootstrap."""
    store = get_store()
    account = store.get_account(username)
    if account is None:
        if not password:
            raise errors.BadRequest(f"{username} does not exist yet: give a password to create it.")
        validate_credentials({"username": username, "password": password})
        _, hashed_key = new_api_key()
        return store.create_account(username, hash_password(password), hashed_key, settings().initial_tokens,
                                    is_admin=True)
    if password:
        store.set_password(username, hash_password(password))
    store.set_admin(username, True)
    return Account(username, account.password_hash, account.tokens, True)


_bootstrapped = False


def bootstrap_admin() -> None:
    """Create the admin named by ADMIN_USERNAME/ADMIN_PASSWORD once, if it is missing."""
    global _bootstrapped
    if _bootstrapped:
        return
    s = settings()
    if s.admin_username and s.admin_password:
        account = get_store().get_account(s.admin_username)
        if account is None or not account.is_admin:
            with contextlib.suppress(errors.Conflict):  # another instance created it first
                ensure_admin(s.admin_username, s.admin_password if account is None else None)
    _bootstrapped = True
