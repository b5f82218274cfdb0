"""Named API keys: several per account, each with a scope, listed and revoked by id, and a coarse `last_used`.

A key's record (`accounts.key_record`) is keyed by the key's hash; the account's document counts the keys made
with `POST /keys`, so their limit holds under concurrent creations (one commit reads and raises the count).
Console session keys (with an `expires`) are not listed here: they have routes of their own.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from common.core import errors
from common.records.accounts import ACCOUNTS, KEYS, read_account, touch
from common.records.deletions import delete_documents
from common.records.port import Doc, DocumentStore, Tx
from common.records.records import Account

NAMED = "named_keys"  # the account's count of keys made with POST /keys


def _counted(tx: Tx, username: str, step: int) -> None:
    account = read_account(tx, username)
    tx.put(ACCOUNTS, username, {**account, NAMED: max(0, int(account.get(NAMED, 0)) + step)})


class KeyRecords:
    docs: DocumentStore

    def key_and_account(self, key_hash: str, now: float | None = None) -> tuple[Doc, Account] | None:
        """The key's record and its account, if the key is live (not expired, its account not deleted)."""
        link = self.docs.get(KEYS, key_hash)
        if link is None or link.get("expires", float("inf")) <= (now or time.time()):
            return None
        doc = self.docs.get(ACCOUNTS, link["username"])
        if doc is None or doc.get("deleted"):
            return None  # the key's public id goes on the account: its spends record it for the usage history
        return link, dataclasses.replace(Account.from_doc(doc), key_id=str(link.get("id", "")))

    def account_by_key(self, key_hash: str, now: float | None = None) -> Account | None:
        """The live key's account (`key_and_account` without the key's record)."""
        found = self.key_and_account(key_hash, now)
        return found[1] if found else None

    def keys_of(self, username: str, limit: int = 1000) -> list[tuple[str, Doc]]:
        """The account's API keys (its default key and those made with POST /keys), not its console sessions."""
        return [(h, doc) for h, doc in self.docs.find(KEYS, "username", username, limit) if "expires" not in doc]

    def add_named_key(self, key_hash: str, record: dict[str, Any], most: int) -> None:
        """Add a key made with POST /keys; refused (409) when the account holds `most` of them already."""
        def work(tx: Tx) -> None:
            account = read_account(tx, record["username"])
            if int(account.get(NAMED, 0)) >= most:
                raise errors.Conflict(f"An account may hold at most {most} named keys. Revoke one you no longer use "
                                      "(GET /keys, then DELETE /keys/<id>) and try again.", code="too_many_keys")
            tx.get(KEYS, key_hash)
            tx.put(KEYS, key_hash, {**record, "named": True})
            _counted(tx, record["username"], 1)

        self.docs.transact(work)

    def revoke_api_key(self, username: str, key_id: str) -> bool:
        """Delete one of the account's API keys by id (its others keep working); False for another's or none."""
        found = [h for h, doc in self.keys_of(username) if doc.get("id") == key_id]

        def work(tx: Tx) -> bool:
            doc = tx.get(KEYS, found[0])
            if doc is None or doc.get("username") != username:
                return False
            tx.delete(KEYS, found[0])
            if doc.get("named"):
                _counted(tx, username, -1)
            return True

        return bool(found) and self.docs.transact(work)

    def revoke_keys(self, username: str, keep: str | None = None, batch: int = 25) -> int:
        """Delete every key of the account (sessions too) but the one hashed `keep`; how many went."""
        revoked = 0
        while True:  # the page is judged by what was listed: the kept key in it must not end the loop early
            listed = [h for h, _ in self.docs.find(KEYS, "username", username, batch + 1)]
            deleted = delete_documents(self.docs, KEYS, [h for h in listed if h != keep][:batch])
            revoked += deleted
            if len(listed) <= batch or not deleted:  # all seen; or an index still listing deleted ones
                break

        def work(tx: Tx) -> None:
            kept = tx.get(KEYS, keep) if keep else None
            tx.put(ACCOUNTS, username, {**read_account(tx, username), NAMED: int(bool(kept and kept.get("named")))})

        self.docs.transact(work)
        return revoked

    def touch_key(self, key_hash: str, now: float, every: float) -> None:
        """Set the key's `last_used` to `now` unless it was set less than `every` seconds ago: on the key's own
        record (never the account's). A key revoked meanwhile stays so."""
        touch(self.docs, KEYS, key_hash, "last_used", now, every)
