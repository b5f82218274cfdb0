"""Account records: one document per account, and one per key, stored under the key's hash.

An account may hold several keys: its API key (`default`, replaced by rotation) and a session key per console
sign-in (`session`, with an `expires`, revoked at sign-out). Each key's record carries a public `id`, a
`name`, the key's first characters (`prefix`), a `scope` and `created`, so keys can be listed and revoked by
id without the key itself; a keyed request is one read of its record, and nothing is written per request.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from common.core import errors
from common.records.port import DocumentStore, Tx
from common.records.records import Account
from common.records.totals import count_account

ACCOUNTS, KEYS = "accounts", "api_keys"
DEFAULT_KEY = "default"


def unknown_user(username: str) -> errors.NotFound:
    return errors.NotFound(f"There is no account named {username!r}.", code="unknown_user")


def read_account(tx: Tx, username: str) -> dict[str, Any]:
    """The account's document; a deleted account (its tombstone, `deletions.py`) is as unknown as a missing one."""
    doc = tx.get(ACCOUNTS, username)
    if doc is None or doc.get("deleted"):
        raise unknown_user(username)
    return doc


def held_back(doc: dict[str, Any] | None, username: str, now: float | None = None) -> None:
    """Refuse a sign-up under a name an account holds, or a deleted one held for its cooling-off (or still being
    purged: its old keys must be gone before the name can mean someone else)."""
    held = doc is not None and not (doc.get("deleted") and doc.get("purged")
                                    and doc.get("hold_until", 0) <= (now or time.time()))
    if held:  # the same answer for a held name as for a live one: it tells nobody an account was deleted
        raise errors.Conflict(f"The username {username!r} is taken. Choose another one.", code="username_taken")


def touch(docs: DocumentStore, kind: str, key: str, field: str, now: float, every: float) -> None:
    """Set a document's `field` to `now` unless it was set less than `every` seconds ago (a key's `last_used`, an
    account's `last_active`): one write per document per interval at most; a missing document stays missing."""
    def work(tx: Tx) -> None:
        doc = tx.get(kind, key)
        if doc is not None and now - float(doc.get(field) or 0) >= every:
            tx.put(kind, key, {**doc, field: now})

    docs.transact(work)


def key_record(username: str, prefix: str, name: str = DEFAULT_KEY, scope: str = "all",
               expires: float | None = None) -> dict[str, Any]:
    """The record of a new key (never the key itself: only its first characters, to tell keys apart)."""
    record = {"username": username, "id": secrets.token_hex(8), "name": name, "prefix": prefix,
              "scope": scope, "created": time.time()}
    return record if expires is None else {**record, "expires": expires}


def _add_key(tx: Tx, key_hash: str, record: dict[str, Any]) -> None:
    tx.get(KEYS, key_hash)
    tx.put(KEYS, key_hash, record)


class AccountRecords:
    docs: DocumentStore

    def create_account(self, username: str, password_hash: str, key_hash: str, tokens: int,
                       is_admin: bool = False, prefix: str = "") -> Account:
        def work(tx: Tx) -> None:
            held_back(tx.get(ACCOUNTS, username), username)
            _add_key(tx, key_hash, key_record(username, prefix))
            tx.put(ACCOUNTS, username, {"username": username, "password_hash": password_hash, "key_hash": key_hash,
                                        "tokens": tokens, "is_admin": is_admin, "created": time.time()})
            count_account(tx, username)

        self.docs.transact(work)
        return Account(username, password_hash, tokens, is_admin)

    def get_account(self, username: str) -> Account | None:
        doc = self.docs.get(ACCOUNTS, username)
        return Account.from_doc(doc) if doc and not doc.get("deleted") else None


    def set_key(self, username: str, key_hash: str, prefix: str = "") -> None:
        """Replace the account's API key (its session keys stay)."""
        def work(tx: Tx) -> None:
            account = read_account(tx, username)
            if account.get("key_hash") and tx.get(KEYS, account["key_hash"]) is not None:
                tx.delete(KEYS, account["key_hash"])
            _add_key(tx, key_hash, key_record(username, prefix))
            tx.put(ACCOUNTS, username, {**account, "key_hash": key_hash})

        self.docs.transact(work)

    def add_key(self, key_hash: str, record: dict[str, Any]) -> None:
        """Add one more key to an existing account (a session key); the account's own key is untouched."""
        def work(tx: Tx) -> None:
            read_account(tx, record["username"])
            _add_key(tx, key_hash, record)

        self.docs.transact(work)

    def revoke_key(self, username: str, key_id: str, name: str) -> bool:
        """Delete the account's key `key_id` of kind `name`; whether there was one (another's id: False)."""
        found = [h for h, doc in self.docs.find(KEYS, "username", username)
                 if doc.get("id") == key_id and doc.get("name") == name]

        def work(tx: Tx) -> bool:
            doc = tx.get(KEYS, found[0])
            if doc is None or doc.get("username") != username:
                return False
            tx.delete(KEYS, found[0])
            return True

        return bool(found) and self.docs.transact(work)

    def _update_account(self, username: str, **fields: Any) -> None:
        def work(tx: Tx) -> None:
            tx.put(ACCOUNTS, username, {**read_account(tx, username), **fields})

        self.docs.transact(work)

    def set_admin(self, username: str, is_admin: bool) -> None:
        self._update_account(username, is_admin=is_admin)

    def set_password(self, username: str, password_hash: str) -> None:
        self._update_account(username, password_hash=password_hash)
