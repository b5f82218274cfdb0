"""The accounts' request bodies (sign-up, sign-in, refill): their checks and their API description in one place."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from msgspec import Meta

from common.core import errors
from common.core.bodies import Body, Refusals

MAX_REFILL = 1_000_000
USERNAME_MESSAGE = "username must be a string of 3 to 64 characters, each a letter, digit, '_', '.' or '-'."
PASSWORD_MESSAGE = "password must be a string of at least 8 characters."  # noqa: S105 - a message, not a password
# `(?!\n)`: Python's `$` also matches before a final newline; JSON Schema (ECMA) reads the pattern the same way
USERNAME_RULE = re.compile(r"^[A-Za-z0-9_.-]{3,64}(?!\n)$")  # msgspec, like this, uses `search`
Username = Annotated[str, Meta(pattern=USERNAME_RULE.pattern, examples=["alice"])]
Account = Annotated[str, Meta(min_length=1, description="The account refilled.")]
Amount = Annotated[int, Meta(ge=1, le=MAX_REFILL)]
NAME_ACCOUNT = (None, "Name the account to refill: {{\"username\": ..., \"amount\": n}}.")  # a format string
AMOUNT = ("invalid_amount", f"amount must be a whole number from 1 to {MAX_REFILL}.")


class Credentials(Body):
    """A username and password (sign-up, or sign-in with the credentials in the body)."""

    username: Username
    password: Annotated[str, Meta(min_length=8, description="At most 72 bytes (bcrypt's limit), no NUL.")]
    refusals: ClassVar[Refusals] = {"username": ("invalid_username", USERNAME_MESSAGE),
                                    "password": ("invalid_password", PASSWORD_MESSAGE)}

    def __post_init__(self) -> None:
        check_new_password(self.password, "password")


def check_new_password(password: str, field: str) -> None:
    """What bcrypt can hash faithfully: at most 72 bytes (it ignores the rest), no NUL (it stops there)."""
    if len(password.encode()) > 72:
        raise errors.BadRequest(f"{field} must be at most 72 bytes (bcrypt's limit).", code="invalid_password")
    if "\x00" in password:
        raise errors.BadRequest(f"{field} must not contain NUL characters.", code="invalid_password")


class ContractRefill(Body):
    """The contract's form, with the admin's credentials in the Authorization header."""

    username: Account
    amount: Amount
    refusals: ClassVar[Refusals] = {"username": NAME_ACCOUNT, "amount": AMOUNT}


class SeedRefill(Body):
    """Seed form: the admin's username/password in the body, `user` is the account refilled."""

    user: Account
    refill: Amount
    username: str | None = None
    password: str | None = None
    refusals: ClassVar[Refusals] = {"user": NAME_ACCOUNT, "refill": AMOUNT}


KEY_NAME_RULE = re.compile(r"^[A-Za-z0-9 _.:-]{1,64}(?!\n)$")
KEY_NAME = ("invalid_key_name", "name must be 1 to 64 characters, each a letter, digit, space, '_', '.', ':' or '-'.")
Given = Annotated[str, Meta(min_length=1, max_length=1024)]  # a password to check (a long one simply fails)
NewPassword = Annotated[str, Meta(min_length=8, description="At least 8 characters, at most 72 bytes, no NUL.")]


class NewKey(Body):
    """A named API key. `all`: everything the account may do; `classify`: classify, read the balance and read its
    own jobs, nothing else (no keys, files, models, jobs to create, training, password or account)."""

    name: Annotated[str, Meta(pattern=KEY_NAME_RULE.pattern, examples=["ci-runner"])]
    scope: Literal["all", "classify"] = "all"
    refusals: ClassVar[Refusals] = {"name": KEY_NAME,
                                    "scope": ("invalid_scope", 'scope must be "all" or "classify".')}


class PasswordChange(Body):
    """A new password, with the current one; `revoke_keys` also revokes every key but the one sending this."""

    old_password: Given
    new_password: NewPassword
    revoke_keys: bool = False
    refusals: ClassVar[Refusals] = {
        "old_password": ("invalid_password", "old_password must be your current password (a string)."),
        "new_password": ("invalid_password", "new_password must be a string of at least 8 characters."),
        "revoke_keys": ("invalid_body", "revoke_keys must be true or false.")}

    def __post_init__(self) -> None:
        check_new_password(self.new_password, "new_password")


class AccountDeletion(Body):
    """The account's password, to confirm its deletion."""

    password: Given
    refusals: ClassVar[Refusals] = {
        "password": ("invalid_password", "Confirm the deletion with your password: {{\"password\": \"...\"}}.")}
