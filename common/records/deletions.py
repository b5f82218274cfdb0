"""Account deletion: one commit stops the account, then its records go in batches, and a crash resumes on sweep.

1. `mark_deleted`, one commit: the account's document becomes a tombstone (`deleted`, `hold_until`, no password,
   no tokens) and a deletion record, due at once, is written beside it. Every key lookup reads the account's
   document, so this one commit stops all of its keys and sessions; every spend reads it too, and is refused.
2. `purge_records`: its keys, spends, jobs (with their image records and counters), space usage; each step
   re-finds what is left, so running it again after a crash finishes the work (the sweeper runs the due ones).
3. `finish_deletion`, one commit: the tombstone is marked purged and the deletion record goes. The name stays
   taken until `hold_until` (a sign-up under it is refused), so nobody can take over a deleted account's name
   while clients still send its old keys.
"""

from __future__ import annotations

import time

from common.records.accounts import ACCOUNTS, KEYS, read_account
from common.records.job_shards import CLOSERS, closer_keys
from common.records.job_shards import SHARDS as JOB_SHARDS
from common.records.jobs import IMAGES, JOBS
from common.records.ledger import SPENDS
from common.records.port import DocumentStore, Tx
from common.records.records import Job
from common.records.totals import count_account
from common.records.usage import SHARDS as USAGE_SHARDS
from common.records.usage import USAGE
from common.records.webhooks import DELIVERIES
from common.records.webhooks import SECRETS as WEBHOOK_SECRETS

DELETIONS = "account_deletions"

BATCH = 25  # documents deleted per commit: under DynamoDB's 100 items (each read and deleted) and Firestore's 500


def delete_documents(docs: DocumentStore, kind: str, keys: list[str]) -> int:
    """Delete the documents `keys` of `kind` in one commit (callers keep a batch under every backend's limit);
    how many existed."""
    def work(tx: Tx) -> int:
        there = [key for key in keys if tx.get(kind, key) is not None]
        for key in there:
            tx.delete(kind, key)
        return len(there)

    return docs.transact(work) if keys else 0


class AccountDeletions:
    docs: DocumentStore

    def mark_deleted(self, username: str, hold_until: float, now: float | None = None) -> None:
        """Stop the account in one commit: its keys, sessions and spends are refused from this commit on."""
        now = now or time.time()

        def work(tx: Tx) -> None:
            account = read_account(tx, username)  # a deleted one is unknown: deleting twice is a 404
            tx.put(ACCOUNTS, username, {"username": username, "password_hash": "", "tokens": 0, "is_admin": False,
                                        "created": account.get("created", now), "deleted": now,
                                        "hold_until": hold_until,
                                        # its open token leases: the purge closes them before it deletes their spends
                                        **({"leases": account["leases"]} if account.get("leases") else {})})
            tx.get(DELETIONS, username)
            tx.put(DELETIONS, username, {"username": username, "expires": now})  # due at once (`deletions_due`)
            count_account(tx, username, -1)  # the operator's account count (`totals.py`)

        self.docs.transact(work)

    def delete_records(self, kind: str, keys: list[str]) -> int:
        return delete_documents(self.docs, kind, keys)

    def deletions_due(self, now: float | None = None, limit: int = 100) -> list[str]:
        """The accounts whose deletion was started and has not finished (a crash, or still under way)."""
        return [doc["username"] for _, doc in self.docs.find_below(DELETIONS, "expires", now or time.time(), limit)]

    def _delete_found(self, kind: str, field: str, value: str) -> int:
        deleted = 0
        while found := [key for key, _ in self.docs.find(kind, field, value, BATCH)]:
            now_deleted = delete_documents(self.docs, kind, found)
            deleted += now_deleted
            if not now_deleted:  # an index lagging its commits still lists deleted ones: nothing left to do
                break
        return deleted

    def purge_records(self, username: str) -> None:
        """Delete the account's keys, spends, jobs, space usage records and webhook secret and deliveries; safe to
        run again after a crash."""
        for kind, field in ((KEYS, "username"), (SPENDS, "username"), (USAGE_SHARDS, "owner"), (DELIVERIES, "owner")):
            self._delete_found(kind, field, username)
        while jobs := self.docs.find(JOBS, "owner", username, BATCH):
            for job_id, doc in jobs:
                self._delete_found(IMAGES, "job_id", job_id)
                self._delete_found(JOB_SHARDS, "job_id", job_id)
                delete_documents(self.docs, CLOSERS, closer_keys(Job.from_doc(doc)))
            if not delete_documents(self.docs, JOBS, [job_id for job_id, _ in jobs]):
                break
        delete_documents(self.docs, USAGE, [username])
        delete_documents(self.docs, WEBHOOK_SECRETS, [username])

    def finish_deletion(self, username: str) -> None:
        """The account's records are gone: its tombstone says so, and its deletion is no longer due."""
        def work(tx: Tx) -> None:
            doc = tx.get(ACCOUNTS, username)
            if doc is not None and doc.get("deleted"):
                tx.put(ACCOUNTS, username, {**doc, "purged": time.time()})
            if tx.get(DELETIONS, username) is not None:
                tx.delete(DELETIONS, username)

        self.docs.transact(work)
