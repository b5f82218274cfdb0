"""Changing the password, and deleting the account: both confirmed with the current password.

A wrong password here counts as a failed sign-in for the name and network (`records/throttles.py`), so a
stolen API key cannot be used to guess the password; the check is bcrypt's, under the hash gate.
Deleting stops the account in one commit (`records/deletions.py`); what it held is purged after
(`common/ops/deletion.py`), and by the sweeper if the process dies first.
"""

from __future__ import annotations

import time
from typing import Any

from common.accounts import passwords
from common.accounts.bodies import AccountDeletion, PasswordChange
from common.adapters.deps import Deps
from common.core import bodies, errors
from common.records.records import Account


def confirm(account: Account, password: str, network: str, deps: Deps) -> None:
    """Refuse (403 `wrong_password`) unless `password` is the account's; 429 while its sign-ins are locked."""
    store = deps.store
    store.check_login(account.username, network)
    if not passwords.check_password(password, account.password_hash):
        store.login_failed(account.username, network, deps.settings.accounts.login_free_failures)
        raise errors.Forbidden("The password is wrong: send your current password to confirm this.",
                               code="wrong_password")
    store.login_succeeded(account.username, network)


def change_password(account: Account, body: dict[str, Any], network: str, current_key: str | None,
                    deps: Deps) -> None:
    """Set a new password. The account's keys keep working unless `revoke_keys`: then every key but the one
    hashed `current_key` (the one sending this, if any) stops."""
    change = bodies.convert(PasswordChange, body)
    confirm(account, change.old_password, network, deps)
    deps.store.set_password(account.username, passwords.hash_password(change.new_password))
    if change.revoke_keys:
        deps.store.revoke_keys(account.username, keep=current_key)


def delete_account(account: Account, body: dict[str, Any], network: str, deps: Deps) -> None:
    """Stop the account (its keys, sessions and spends) in one commit and hold its name back; its data is purged
    after, by the caller or by the sweeper."""
    confirm(account, bodies.convert(AccountDeletion, body).password, network, deps)
    hold = deps.settings.accounts.name_hold_days * 86400
    deps.store.mark_deleted(account.username, time.time() + hold)
