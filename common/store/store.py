"""`Store`: every record rule of the product over one `DocumentStore` adapter."""

from __future__ import annotations

from common.store.accounts import AccountRecords
from common.store.jobs import JobRecords
from common.store.ledger import Ledger
from common.store.metered import MeteredDocuments
from common.store.models import ModelRecords
from common.store.port import DocumentStore
from common.store.reservations import Reservations
from common.store.throttles import Throttles
from common.store.usage import UsageRecords


class Store(AccountRecords, Ledger, Reservations, JobRecords, ModelRecords, UsageRecords, Throttles):
    def __init__(self, docs: DocumentStore) -> None:
        self.docs = MeteredDocuments(docs)  # every committed charge and refund is counted (common/store/metered.py)

    def close(self) -> None:
        self.docs.close()
