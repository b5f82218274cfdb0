"""The token ledger's rules, written once for every adapter.

- A spend is one atomic change: the balance never goes below zero, and the
  spend record is created in the same commit.
- Requests spend through reservations (`reservations.py`): charged up front,
  the unused part refunded when they settle or their lease expires.
- A refund is applied at most once (its id is recorded with it) and the
  refunds of a spend never add up to more than the spend.
"""

from __future__ import annotations

import time
from typing import Any

from common.core import errors
from common.records.accounts import ACCOUNTS, read_account
from common.records.metered import tally
from common.records.port import DocumentStore, Tx

SPENDS, REFUNDS = "spends", "refunds"


def usage_day(username: str, at: float) -> str:
    """What a spend is found by for its account's usage history: the account and the UTC day it was made."""
    return f"{username}|{time.strftime('%Y-%m-%d', time.gmtime(at))}"


def charge(tx: Tx, username: str, amount: int, spend_id: str, **extra: Any) -> int:
    """Take `amount` tokens and record the spend; the new balance. Refused (402) when the balance is short.
    A spend is taken once under its id: an attempt run again after its commit's reply was lost (Firestore's
    retries re-run the work) finds its spend recorded and takes nothing more."""
    account = read_account(tx, username)
    balance = int(account["tokens"])
    if tx.get(SPENDS, spend_id) is not None:
        return balance
    if balance < amount:
        raise errors.InsufficientTokens(balance, amount)
    tx.put(ACCOUNTS, username, {**account, "tokens": balance - amount})
    now = time.time()  # `extra`: the spend's `kind` (classify, job, training) and `key_id`, for the usage history
    tx.put(SPENDS, spend_id, {"username": username, "amount": amount, "refunded": 0, "created": now,
                              "usage_day": usage_day(username, now), **extra})
    tally(tx, spent=amount)
    return balance - amount


def apply_refund(tx: Tx, username: str, spend_id: str, amount: int, refund_id: str) -> int:
    """Give back `amount` of a spend unless this refund was applied already or would exceed the spend."""
    account = read_account(tx, username)
    balance = int(account["tokens"])
    if amount <= 0 or tx.get(REFUNDS, refund_id) is not None:
        return balance
    spend = tx.get(SPENDS, spend_id)
    if spend is None or spend["username"] != username or spend["refunded"] + amount > spend["amount"]:
        return balance  # never refund more than was spent
    tx.put(REFUNDS, refund_id, {"spend": spend_id, "amount": amount})
    tx.put(SPENDS, spend_id, {**spend, "refunded": spend["refunded"] + amount})
    tx.put(ACCOUNTS, username, {**account, "tokens": balance + amount})
    tally(tx, refunded=amount)
    return balance + amount


class Ledger:
    docs: DocumentStore

    def refund(self, username: str, spend_id: str, amount: int, refund_id: str) -> int:
        return self.docs.transact(lambda tx: apply_refund(tx, username, spend_id, amount, refund_id))

    def refill(self, username: str, amount: int) -> int:
        def work(tx: Tx) -> int:
            account = read_account(tx, username)
            balance = int(account["tokens"]) + amount
            tx.put(ACCOUNTS, username, {**account, "tokens": balance})
            return balance

        return self.docs.transact(work)
