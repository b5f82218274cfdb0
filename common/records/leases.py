"""Token leases: a busy account's tokens spent without writing its document per request.

An instance takes a block of tokens from the account in one commit (the
account keeps at least a floor, and lists the lease under `leases`), then
spends from it in memory; each reservation is its own spend record, refunded
into that record, never into the account. Closing a lease returns
`block - sum(spends net of refunds)` to the account in one commit.

Exactness without a shared write per spend rests on two facts that, once
true, stay true (so reading them needs no guard, on any adapter):

- A lease's spends are chains of slots (`lanes`, each `<lease>:<lane>:<n>`);
  slot n is created only when slot n-1 holds a spend. Closing first seals
  every lane with a tombstone in its first empty slot, so no spend can be
  added after (one racing the seal either wins its slot, and is counted, or
  loses it, and is retried elsewhere).
- A closed spend (settled or expired) never changes its amounts. The close
  waits until every spend of the lease is closed (the holder stops spending
  so that every spend expires before the lease does), then sums them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from common.records.accounts import ACCOUNTS, read_account
from common.records.lease_slots import LEASES, slot_id
from common.records.ledger import SPENDS
from common.records.port import Doc, DocumentStore, Tx
from common.records.reservations import expire_spend
from common.records.totals import add_totals


def take(tx: Tx, username: str, lease_id: str, wanted: int, sizes: tuple[int, int, int], expires: float,
         lanes: int, holder: str = "") -> int:
    """Move up to `wanted` tokens into a new lease; the block (0: none). `sizes`: the least block worth taking,
    the balance under which the account is charged on its document, and the floor a lease never takes. A lease
    takes at most half of what is above the floor, so other instances find some too."""
    least, min_balance, floor = sizes
    account = read_account(tx, username)
    leases = dict(account.get("leases") or {})
    if lease_id in leases:  # this attempt committed already (its reply was lost)
        return int(leases[lease_id])
    tokens = int(account["tokens"])
    block = min(wanted, (tokens - floor) // 2)
    if tokens < min_balance or block < max(least, 1):
        return 0
    tx.put(ACCOUNTS, username, {**account, "tokens": int(account["tokens"]) - block,
                                "leases": {**leases, lease_id: block}})
    tx.put(LEASES, lease_id, {"username": username, "block": block, "lanes": lanes, "expires": expires,
                              "created": time.time(), **({"holder": holder} if holder else {})})
    return block


def _seal_lane(docs: DocumentStore, lease_id: str, lane: int) -> list[str]:
    """Tombstone the lane's first empty slot; the ids of the spends before it."""
    found: list[str] = []
    while True:
        spend_id = slot_id(lease_id, lane, len(found))

        def work(tx: Tx, spend_id: str = spend_id) -> bool:
            doc = tx.get(SPENDS, spend_id)
            if doc is None:
                tx.put(SPENDS, spend_id, {"sealed": True, "lease": lease_id})
                return True
            return bool(doc.get("sealed"))

        if docs.transact(work):
            return found
        found.append(spend_id)


def _spends(docs: DocumentStore, lease: Doc, lease_id: str) -> Iterator[tuple[str, Doc]]:
    for lane in range(int(lease["lanes"])):
        n = 0
        while (doc := docs.get(SPENDS, slot_id(lease_id, lane, n))) is not None and not doc.get("sealed"):
            yield slot_id(lease_id, lane, n), doc
            n += 1


def unspent(docs: DocumentStore, lease_id: str) -> int:
    """What an open lease still holds: its block less its spends net of refunds (in-flight ones count spent)."""
    lease = docs.get(LEASES, lease_id)
    if lease is None or lease.get("closed"):
        return 0
    return int(lease["block"]) - sum(d["amount"] - d["refunded"] for _, d in _spends(docs, lease, lease_id))


class Leases:
    docs: DocumentStore

    def take_lease(self, username: str, wanted: int, least: int, min_balance: int, floor: int, expires: float,
                   lanes: int, holder: str = "") -> tuple[str, int]:
        """(lease id, block) of a new lease of up to `wanted` tokens (`take`); block 0 when the account cannot
        spare one."""
        lease_id = f"{username}:lease:{uuid.uuid4().hex}"
        sizes = (least, min_balance, floor)
        return lease_id, self.docs.transact(lambda tx: take(tx, username, lease_id, wanted, sizes, expires, lanes,
                                                            holder))

    def balance(self, username: str) -> int:
        """The account's tokens plus what its open leases have not spent: exact when no request is in flight."""
        account = self.docs.get(ACCOUNTS, username)
        if account is None:
            return 0
        return int(account["tokens"]) + sum(unspent(self.docs, lease_id) for lease_id in account.get("leases") or {})

    def close_lease(self, lease_id: str, now: float | None = None) -> bool | None:
        """Return what a lease did not spend to its account, once; True when this call closed it, False when it was
        closed already, None when a spend of it is still open and unexpired (close it later). Seals the lease
        first: no spend can be added after."""
        lease = self.docs.get(LEASES, lease_id)
        if lease is None or lease.get("closed"):
            return False
        spend_ids = [s for lane in range(int(lease["lanes"])) for s in _seal_lane(self.docs, lease_id, lane)]
        now = time.time() if now is None else now
        spends = [(s, self.docs.get(SPENDS, s) or {}) for s in spend_ids]
        if any("expires" in d and d["expires"] >= now for _, d in spends):
            return None
        for spend_id, doc in spends:
            if "expires" in doc:
                self._expire_one(spend_id)
        used = sum(d["amount"] - d["refunded"] for d in (self.docs.get(SPENDS, s) or {} for s in spend_ids))

        def work(tx: Tx) -> bool:
            current = tx.get(LEASES, lease_id)
            if current is None or current.get("closed"):
                return False
            closed = {k: v for k, v in current.items() if k not in ("expires", "holder")}
            if used:  # the operator's totals take a lease's spends once, net of refunds, here: not one write each
                add_totals(tx, lease_id, spent=used)
            found = tx.get(ACCOUNTS, current["username"])
            if found is None or found.get("deleted"):  # a deleted account's tokens are gone: nothing goes back
                tx.put(LEASES, lease_id, {**closed, "closed": True, "spent": used, "returned": 0})
                return True
            account = read_account(tx, current["username"])
            leases = {k: v for k, v in (account.get("leases") or {}).items() if k != lease_id}
            back = int(current["block"]) - used
            tx.put(ACCOUNTS, current["username"], {**account, "tokens": int(account["tokens"]) + back,
                                                   "leases": leases})
            tx.put(LEASES, lease_id, {**closed, "closed": True, "spent": used, "returned": back})
            return True

        return self.docs.transact(work)

    def _expire_one(self, spend_id: str) -> bool:
        return self.docs.transact(lambda tx: expire_spend(tx, spend_id))

    def close_account_leases(self, username: str) -> bool:
        """Close every lease the account (a deleted one's tombstone too) lists; whether all are closed. Its spends
        must stay until then: a close sums them for the day's totals."""
        account = self.docs.get(ACCOUNTS, username) or {}
        return all(self.close_lease(lease_id) is not None for lease_id in account.get("leases") or {})

    def close_expired_leases(self, now: float | None = None, limit: int = 200) -> int:
        """Close every lease past its expiry (its holder died or forgot it); how many were closed."""
        now = time.time() if now is None else now
        return sum(bool(self.close_lease(lease_id, now)) for lease_id, _ in
                   self.docs.find_below(LEASES, "expires", now, limit))

    def release_holder_leases(self, holder: str, limit: int = 200) -> int:
        """Close the leases of a holder known to be dead, once its reservations were released."""
        return sum(bool(self.close_lease(lease_id)) for lease_id, _ in self.docs.find(LEASES, "holder", holder, limit))
