"""`Store`: every record rule of the product over one `DocumentStore` adapter."""

from __future__ import annotations

from common.records.account_keys import KeyRecords
from common.records.accounts import KEYS as API_KEYS
from common.records.accounts import AccountRecords
from common.records.deletions import AccountDeletions
from common.records.jobs import JobRecords
from common.records.leases import Leases
from common.records.ledger import Ledger
from common.records.metered import MeteredDocuments
from common.records.models import ModelRecords
from common.records.operator import OperatorRecords
from common.records.port import DocumentStore, Tx
from common.records.reservations import KEYS, Reservations
from common.records.spends import SpendHistory
from common.records.throttles import FAILURES, WINDOWS, Throttles
from common.records.usage import UsageRecords
from common.records.webhooks import WebhookRecords

# What `Store.purge_expired` deletes once expired (read as absent already); DynamoDB's TTL may delete them too,
# never spends or space writes, whose expiry the sweeper must act on
PURGED_KINDS = (WINDOWS, KEYS, FAILURES, API_KEYS)


class Store(AccountRecords, KeyRecords, AccountDeletions, Ledger, Reservations, Leases, JobRecords, ModelRecords,
            UsageRecords, Throttles, OperatorRecords, WebhookRecords, SpendHistory):
    def __init__(self, docs: DocumentStore) -> None:
        self.docs = MeteredDocuments(docs)  # every committed charge and refund is counted (common/records/metered.py)

    def purge_expired(self, now: float, limit: int = 1000) -> int:
        """Delete sign-up windows, Idempotency-Key records, password-failure records and console session keys
        past their `expires` (all are read as absent once expired, so this changes no answer; it keeps them from
        piling up); how many were deleted."""
        purged = 0
        for kind in PURGED_KINDS:
            for key, _ in self.docs.find_below(kind, "expires", now, limit):
                def work(tx: Tx, kind: str = kind, key: str = key) -> bool:
                    current = tx.get(kind, key)  # renewed meanwhile (a new window or request): kept
                    if current is None or current.get("expires", now) >= now:
                        return False
                    tx.delete(kind, key)
                    return True

                purged += self.docs.transact(work)
        return purged

    def close(self) -> None:
        self.docs.close()
