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
from common.records.totals import add_totals, day_of

SPENDS, REFUNDS = "spends", "refunds"


def usage_day(username: str, at: float) -> str:
    """What a spend is found by for its account's usage history: the account and the UTC day it was made."""
    return f"{username}|{day_of(at)}"


def charge(tx: Tx, username: str, amount: int, spend_id: str, **extra: Any) -> int:
    """Take `amount` tokens and record the spend; the new balance. Refused (402) when the balance is short.
    A spend is taken once under its id: an attempt run again after its commit's reply was lost (Firestore's
    retries re-run the work) finds its spend recorded and takes nothing more."""
    account = read_account(tx, username)
    balance = int(account["tokens"])
    if tx.get(SPENDS, spend_id) is not None:
        return balance
    if balance < amount:
        if account.get("leases"):  # the rest is held by leases (`leases.py`), back once they close: not a 402 yet
            raise errors.Unavailable("Your remaining tokens are held by requests in progress. Retry in a moment.",
                                     code="tokens_leased")
        raise errors.InsufficientTokens(balance, amount)
    tx.put(ACCOUNTS, username, {**account, "tokens": balance - amount})
    now = time.time()  # `extra`: the spend's `kind` (classify, job, training) and `key_id`, for the usage history
    tx.put(SPENDS, spend_id, {"username": username, "amount": amount, "refunded": 0, "created": now,
                              "usage_day": usage_day(username, now), **extra})
    tally(tx, spent=amount)
    add_totals(tx, spend_id, spent=amount, **({"training_spent": amount} if extra.get("kind") == "training" else {}))
    return balance - amount


def refund_spend(tx: Tx, username: str, spend_id: str, amount: int, refund_id: str) -> bool:
    """Record `amount` refunded on a spend unless this refund was applied already or would exceed the spend;
    whether it was (a lease's spend is refunded into its lease: this, and no account write)."""
    if amount <= 0 or tx.get(REFUNDS, refund_id) is not None:
        return False
    spend = tx.get(SPENDS, spend_id)
    if spend is None or spend.get("username") != username or spend["refunded"] + amount > spend["amount"]:
        return False  # never refund more than was spent
    tx.put(REFUNDS, refund_id, {"spend": spend_id, "amount": amount})
    tx.put(SPENDS, spend_id, {**spend, "refunded": spend["refunded"] + amount})
    tally(tx, refunded=amount)
    if not spend.get("lease"):  # a lease's spends reach the day's totals net, once, when it closes (`leases.py`)
        add_totals(tx, spend_id, refunded=amount, **({"training_refunded": amount} if spend.get("kind") == "training"
                                                      else {}))
    return True


def apply_refund(tx: Tx, username: str, spend_id: str, amount: int, refund_id: str) -> int:
    """Give back `amount` of a spend to the account unless this refund was applied already or would exceed the
    spend; the balance. A deleted account's tokens are gone: nothing is given back (its reservations and jobs
    still close)."""
    doc = tx.get(ACCOUNTS, username)
    if doc is not None and doc.get("deleted"):
        return 0
    account = read_account(tx, username)
    balance = int(account["tokens"])
    if not refund_spend(tx, username, spend_id, amount, refund_id):
        return balance
    tx.put(ACCOUNTS, username, {**account, "tokens": balance + amount})
    return balance + amount


def credit(tx: Tx, username: str, amount: int) -> int:
    """Add `amount` tokens (a refill); the new balance."""
    account = read_account(tx, username)
    balance = int(account["tokens"]) + amount
    tx.put(ACCOUNTS, username, {**account, "tokens": balance})
    return balance


class Ledger:
    docs: DocumentStore

    def refund(self, username: str, spend_id: str, amount: int, refund_id: str) -> int:
        return self.docs.transact(lambda tx: apply_refund(tx, username, spend_id, amount, refund_id))

    def refill(self, username: str, amount: int) -> int:
        return self.docs.transact(lambda tx: credit(tx, username, amount))
