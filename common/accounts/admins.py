"""Administrators: created only by an operator (command or bootstrap configuration), never by sign-up;
over HTTP they refill accounts (here) and run the console's admin page (`common/accounts/operator.py`)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from common.accounts import passwords
from common.accounts import service as accounts
from common.accounts.bodies import MAX_REFILL as MAX_REFILL  # the operator command's bound too
from common.accounts.bodies import ContractRefill, SeedRefill
from common.adapters.deps import Deps
from common.core import bodies, errors
from common.records.ledger import credit
from common.records.records import Account

log = logging.getLogger("imageclassify.admins")


def parse_refill(body: dict[str, Any]) -> tuple[str, int]:
    """The account and amount of a refill, in the contract's form or the seed's (`user`, `refill`)."""
    if "user" in body or "refill" in body:
        seed = bodies.convert(SeedRefill, body)
        return seed.user, seed.refill
    refill = bodies.convert(ContractRefill, body)
    return refill.username, refill.amount


def refill(admin: Account, username: str, amount: int, deps: Deps) -> int:
    if not admin.is_admin:
        raise errors.Forbidden("Only administrators can refill accounts.")
    store = deps.store
    if store.get_account(username) is None:
        raise errors.NotFound(f"There is no account named {username!r}.", code="unknown_user")
    # recorded in the audit log in the refill's own commit
    return int(store.audited(admin.username, "refill", username, lambda tx: credit(tx, username, amount),
                             amount=amount))


def ensure_admin(username: str, password: str | None, deps: Deps) -> Account:
    """Create an admin, or promote an existing account; used by the operator command and the bootstrap."""
    store = deps.store
    account = store.get_account(username)
    if account is None:
        if not password:
            raise errors.BadRequest(f"{username} does not exist yet: give a password to create it.")
        accounts.validate_credentials({"username": username, "password": password})
        key, hashed_key = accounts.new_api_key()
        return store.create_account(username, passwords.hash_password(password), hashed_key,
                                    deps.settings.accounts.initial_tokens, is_admin=True,
                                    prefix=accounts.key_prefix(key))
    if password:
        store.set_password(username, passwords.hash_password(password))
    store.set_admin(username, True)
    return Account(username, account.password_hash, account.tokens, True)


_bootstrapped = False


def bootstrap_admin(deps: Deps) -> None:
    """Create the admin named by ADMIN_USERNAME/ADMIN_PASSWORD once per process, if it is missing.

    Run before the first authentication of each instance: an admin can only act once authenticated."""
    global _bootstrapped
    if _bootstrapped:
        return
    s = deps.settings
    if s.accounts.admin_username and s.accounts.admin_password:
        account = deps.store.get_account(s.accounts.admin_username)
        if account is None:
            with contextlib.suppress(errors.Conflict):  # another instance created it first
                ensure_admin(s.accounts.admin_username, s.accounts.admin_password, deps)
        elif not account.is_admin:  # someone else's account of that name: never promoted by configuration
            log.error("ADMIN_USERNAME names an existing account that is not an admin; it was not promoted. Choose "
                      "another ADMIN_USERNAME, or promote it knowingly with `python -m common.ops.admin`.")
    _bootstrapped = True


def reset_bootstrap() -> None:
    """Tests switch stores; the next authentication checks the admin again."""
    global _bootstrapped
    _bootstrapped = False
