"""Count the tokens each committed transaction spent and refunded: for the metrics and the request's log line.

A transaction's work may run more than once (a lost race runs it again), so
the ledger's rules tally on the transaction they are given (`tally`), and only
the tally of the attempt that committed is reported, once `transact` returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from common.core import logs, metrics
from common.records.port import Doc, PassThrough, Tx

T = TypeVar("T")


class TalliedTx:
    """A transaction that also counts what the ledger charged and refunded in it."""

    def __init__(self, tx: Tx) -> None:
        self.tx, self.spent, self.refunded = tx, 0, 0

    def get(self, kind: str, key: str) -> Doc | None:
        return self.tx.get(kind, key)

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self.tx.put(kind, key, doc)

    def delete(self, kind: str, key: str) -> None:
        self.tx.delete(kind, key)

    def tally(self, spent: int = 0, refunded: int = 0) -> None:
        self.spent += spent
        self.refunded += refunded


def tally(tx: Tx, spent: int = 0, refunded: int = 0) -> None:
    """Note a charge or refund on the transaction, when it counts them."""
    if isinstance(tx, TalliedTx):
        tx.tally(spent, refunded)


class MeteredDocuments(PassThrough):
    """A `DocumentStore` that reports the ledger's committed charges and refunds; everything else passes through."""

    def transact(self, work: Callable[[Tx], T]) -> T:
        attempts: list[TalliedTx] = []

        def attempt(tx: Tx) -> T:
            attempts.append(TalliedTx(tx))
            return work(attempts[-1])

        result = self.inner.transact(attempt)
        committed = attempts[-1] if attempts else None
        if committed is not None and (committed.spent or committed.refunded):
            metrics.count("tokens_spent", committed.spent)
            metrics.count("tokens_refunded", committed.refunded)
            logs.add_tokens(committed.spent, committed.refunded)
        return result

