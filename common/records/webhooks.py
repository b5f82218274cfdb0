"""Webhook deliveries and secrets: the records that make a job's or a training run's end reach its owner's URL.

- The delivery of an end is recorded in the commit that ends the job or the
  run (one record, keyed by the event id, which is the job's or run's own), so
  a crash can lose no delivery: the record is due at once, and whatever
  publishes it (the finishing process right after its commit, or the sweeper
  for any record still due) only sends a message naming it.
- An attempt first claims the record (one commit: due, still pending; its
  next attempt moved a lease ahead, its attempts counted), so two messages of
  one delivery never post at once and a worker that dies mid-post is retried
  when the lease runs out. The outcome is one more commit: delivered, or due
  again after the next step of the backoff schedule, or failed once the
  schedule is spent or a day has passed.
- Delivery is at least once: a receiver that answered but whose answer was
  lost gets the event again, with the same id, to deduplicate on.
- An account's signing secret is kept in a record of its own (it must be
  read to sign, so it cannot be stored hashed like an API key): never in the
  account's document, a log line or a reply other than its owner's
  `GET /webhooks/secret`; the store's encryption at rest covers it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from common.core import errors
from common.records.accounts import ACCOUNTS
from common.records.port import Doc, DocumentStore, Tx

DELIVERIES, SECRETS = "webhook_deliveries", "webhook_secrets"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of a generated secret, not a secret
KEEP_TRYING = 24 * 3600.0  # seconds after the event, after which a delivery is given up
ERROR_CHARS = 300
log = logging.getLogger("imageclassify.webhooks")
_announcers: list[Callable[[str], None]] = []  # what tells a worker at once (set by the composition root)
T = TypeVar("T")


class Announced(Protocol):
    """What ends with a webhook: a job or a training run."""

    owner: str
    webhook: str | None


A = TypeVar("A", bound=Announced)


def job_event(job: Any) -> dict[str, Any]:
    """The event of a job's end (a `Job`): what a receiver needs without polling."""
    return {"type": "job.finished", "event_id": f"evt_job_{job.id}", "id": job.id, "status": job.status,
            "created": time.time(), "total": job.total, "processed": job.processed, "failed": job.failed,
            "not_written": job.not_written, **({"error": job.error} if job.error else {})}


def model_event(record: Any) -> dict[str, Any]:
    """The event of a training run's end (a `ModelRecord`)."""
    return {"type": "model.finished", "event_id": f"evt_model_{record.version}", "id": record.name,
            "status": record.status, "created": time.time(), "images": record.images, "failed": record.failed,
            "accuracy": record.accuracy, **({"error": record.error} if record.error else {})}


def announcing(work: Callable[[Tx, list[A]], T], event: Callable[[A], dict[str, Any]]
               ) -> Callable[[Tx, list[A]], T]:
    """`work` (a transaction's, appending what it ends to the list it is given), then the webhook delivery of each
    thing it ended recorded in the same transaction."""

    def wrapped(tx: Tx, ended: list[A]) -> T:
        result = work(tx, ended)
        for item in ended:
            announce(tx, item.owner, item.webhook, event(item))
        return result

    return wrapped


def kick_for(item: Announced, event: Callable[[Any], dict[str, Any]]) -> None:
    """After the commit that ended `item`: have its webhook delivered now, if it has one."""
    if item.webhook:
        kick(event(item)["event_id"])


def on_announce(publish: Callable[[str], None]) -> None:
    """Have `publish(delivery id)` called after each commit that records a delivery (best effort: the sweeper
    publishes any delivery still due)."""
    _announcers[:] = [publish]


def kick(delivery_id: str) -> None:
    for publish in _announcers:
        try:
            publish(delivery_id)
        except Exception:  # the record is due: the sweeper publishes it
            log.warning("publishing webhook delivery %s failed; the sweeper will", delivery_id, exc_info=True)


def _deleted(tx: Tx, owner: str) -> bool:
    """The owner's account was deleted: its purge may have run already, so nothing of it is recorded any more."""
    return bool((tx.get(ACCOUNTS, owner) or {}).get("deleted"))


def announce(tx: Tx, owner: str, url: str | None, event: dict[str, Any]) -> None:
    """Record the delivery of `event` (its `event_id` is the record's key) to `url`, due now; nothing without a
    URL, for a deleted account, or when it was recorded before."""
    if not url or tx.get(DELIVERIES, event["event_id"]) is not None or _deleted(tx, owner):
        return
    now = time.time()
    tx.put(DELIVERIES, event["event_id"], {"owner": owner, "url": url, "event": event, "status": "pending",
                                     "attempts": 0, "last_error": None, "last_status": None, "created": now,
                                     "updated": now, "expires": now})


def _public(delivery_id: str, doc: Doc) -> dict[str, Any]:
    return {"id": delivery_id, "type": doc["event"]["type"], "object": doc["event"]["id"],
            "url": doc["url"], "status": doc["status"], "attempts": doc["attempts"],
            "last_error": doc["last_error"], "last_status": doc["last_status"], "created": doc["created"],
            "next_attempt": doc.get("expires") if doc["status"] == "pending" else None}


class WebhookRecords:
    docs: DocumentStore

    def claim_delivery(self, delivery_id: str, lease: float, now: float | None = None) -> Doc | None:
        """The delivery to attempt now, claimed for `lease` seconds; None when it is not due (another attempt
        holds it, or it waits for its next step) or is delivered, failed or unknown."""
        at = now or time.time()

        def work(tx: Tx) -> Doc | None:
            doc = tx.get(DELIVERIES, delivery_id)
            if doc is None or doc["status"] != "pending" or doc["expires"] > at or _deleted(tx, doc["owner"]):
                return None  # (a deleted account's deliveries are not attempted: its purge deletes them)
            claimed = {**doc, "attempts": doc["attempts"] + 1, "expires": at + lease, "updated": at}
            tx.put(DELIVERIES, delivery_id, claimed)
            return claimed

        return self.docs.transact(work)

    def delivery_outcome(self, delivery_id: str, error: str | None, status: int | None,
                         backoff: tuple[float, ...], now: float | None = None) -> str:
        """Record an attempt's outcome (`error` None: delivered); the delivery's status after it."""
        at = now or time.time()

        def work(tx: Tx) -> str:
            doc = tx.get(DELIVERIES, delivery_id)
            if doc is None or doc["status"] != "pending":
                return doc["status"] if doc else "gone"
            done = {**doc, "last_error": error[:ERROR_CHARS] if error else None, "last_status": status, "updated": at}
            step = doc["attempts"] - 1
            if error is None or step >= len(backoff) or at + backoff[step] > doc["created"] + KEEP_TRYING:
                done.pop("expires", None)
                done["status"] = "delivered" if error is None else "failed"
            else:
                done["expires"] = at + backoff[step]
            tx.put(DELIVERIES, delivery_id, done)
            return str(done["status"])

        return self.docs.transact(work)

    def due_deliveries(self, now: float, limit: int = 500) -> list[str]:
        """The deliveries whose next attempt is due (or whose claim ran out)."""
        return [key for key, doc in self.docs.find_below(DELIVERIES, "expires", now, limit)
                if doc.get("status") == "pending"]

    def deliveries_of(self, owner: str, limit: int = 50) -> list[dict[str, Any]]:
        """An account's most recent deliveries, newest first."""
        found = self.docs.find(DELIVERIES, "owner", owner, 1000)
        found.sort(key=lambda pair: pair[1]["created"], reverse=True)
        return [_public(key, doc) for key, doc in found[:limit]]

    def delivery_of(self, owner: str, delivery_id: str) -> dict[str, Any] | None:
        """One delivery of the account's; None for another's or an unknown one."""
        doc = self.docs.get(DELIVERIES, delivery_id)
        return _public(delivery_id, doc) if doc and doc["owner"] == owner else None

    def webhook_secret(self, owner: str, rotate: bool = False) -> str:
        """The account's webhook signing secret: made on first use, replaced by `rotate` (the old one stops
        signing at once)."""
        current = self.docs.get(SECRETS, owner)
        if current is not None and not rotate:
            return str(current["secret"])

        def work(tx: Tx) -> str:
            doc = tx.get(SECRETS, owner)
            if doc is not None and not rotate:
                return str(doc["secret"])  # made meanwhile by another first use
            if _deleted(tx, owner):  # an attempt claimed before the deletion: no secret outlives the purge
                raise errors.NotFound("The account was deleted.")
            secret = SECRET_PREFIX + secrets.token_hex(32)
            tx.put(SECRETS, owner, {"owner": owner, "secret": secret, "created": time.time()})
            return secret

        return self.docs.transact(work)
