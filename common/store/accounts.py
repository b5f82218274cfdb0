"""Account records: one document per account, and one per API key hash pointing at its account."""

from __future__ import annotations

import time
from typing import Any

from common import errors
from common.store.port import DocumentStore, Tx
from common.store.records import Account

ACCOUNTS, KEYS = "accounts", "api_keys"


def unknown_user(username: str) -> errors.NotFound:
    return errors.NotFound(f"There is no account named {username!r}.", code="unknown_user")


def read_account(tx: Tx, username: str) -> dict[str, Any]:
    doc = tx.get(ACCOUNTS, username)
    if doc is None:
        raise unknown_user(username)
    return doc


class AccountRecords:
    docs: DocumentStore

    def create_account(self, username: str, password_hash: str, key_hash: str, tokens: int,
                       is_admin: bool = False) -> Account:
        def work(tx: Tx) -> None:
            if tx.get(ACCOUNTS, username) is not None:
                raise errors.Conflict(f"The username {username!r} is taken. Choose another one.",
                                      code="username_taken")
            tx.get(KEYS, key_hash)
            tx.put(ACCOUNTS, username, {"username": username, "password_hash": password_hash, "key_hash": key_hash,
                                        "tokens": tokens, "is_admin": is_admin, "created": time.time()})
            tx.put(KEYS, key_hash, {"username": username})

        self.docs.transact(work)
        return Account(username, password_hash, tokens, is_admin)

    def get_account(self, username: str) -> Account | None:
        doc = self.docs.get(ACCOUNTS, username)
        return Account.from_doc(doc) if doc else None

    def account_by_key(self, key_hash: str) -> Account | None:
        link = self.docs.get(KEYS, key_hash)
        return self.get_account(link["username"]) if link else None

    def set_key(self, username: str, key_hash: str) -> None:
        def work(tx: Tx) -> None:
            account = read_account(tx, username)
            if account.get("key_hash") and tx.get(KEYS, account["key_hash"]) is not None:
                tx.delete(KEYS, account["key_hash"])
            tx.get(KEYS, key_hash)
            tx.put(KEYS, key_hash, {"username": username})
            tx.put(ACCOUNTS, username, {**account, "key_hash": key_hash})

        self.docs.transact(work)

    def _update_account(self, username: str, **fields: Any) -> None:
        def work(tx: Tx) -> None:
            tx.put(ACCOUNTS, username, {**read_account(tx, username), **fields})

        self.docs.transact(work)

    def set_admin(self, username: str, is_admin: bool) -> None:
        self._update_account(username, is_admin=is_admin)

    def set_password(self, username: str, password_hash: str) -> None:
        self._update_account(username, password_hash=password_hash)
