"""Deliver one webhook event: a queue message names the delivery, this attempts it once and records the outcome.

Delivery runs in a message of its own, never in the path that ends a job or a
training run, so a slow or absent receiver only costs the attempt's own
deadline (WEBHOOK_TIMEOUT). Retries follow the delivery record's schedule
(WEBHOOK_BACKOFF): the sweeper publishes each delivery again when its next
attempt is due, rather than the queue's own redelivery, whose backoff tops out
at minutes (Pub/Sub) and whose attempts end in the dead-letter topic, not in
a log the owner can read.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from common.accounts import webhooks
from common.adapters.deps import Deps
from common.core import errors, signing
from common.media import webhookpost

KIND = "webhook"
log = logging.getLogger("imageclassify.webhooks")


def message(delivery_id: str) -> dict[str, Any]:
    return signing.sign({"kind": KIND, "delivery": delivery_id})


def is_delivery(message_: Any) -> bool:
    return isinstance(message_, dict) and message_.get("kind") == KIND


def handle(message_: Any, deps: Deps) -> bool:
    """Attempt the delivery a message names, once, if it is due; whether an attempt was made. Never raises for
    the receiver's sake: the message is acknowledged and the record says what happens next."""
    delivery_id = message_.get("delivery") if isinstance(message_, dict) else None
    if not signing.verified(message_) or not isinstance(delivery_id, str):
        log.error("dropping a webhook message we did not sign")
        return False
    s = deps.settings.webhooks
    claimed = deps.store.claim_delivery(delivery_id, lease=s.webhook_timeout * 2 + 30)
    if claimed is None:
        return False  # delivered, given up, or held by another attempt
    body = json.dumps(claimed["event"], separators=(",", ":"), sort_keys=True).encode()
    try:
        secret = webhooks.secret(claimed["owner"], deps)
    except errors.NotFound:  # the account was deleted after the claim: its purge deletes the delivery
        return False
    headers = {"Content-Type": "application/json", webhooks.HEADER: webhooks.signature(secret, int(time.time()), body),
               "ImageClassify-Event-Id": delivery_id}
    error, status = webhookpost.post(claimed["url"], body, headers, s.webhook_timeout)
    outcome = deps.store.delivery_outcome(delivery_id, error, status, s.webhook_backoff)
    log.info("webhook %s attempt %d: %s (%s)", delivery_id, claimed["attempts"], error or "delivered", outcome)
    return True


def publish_due(deps: Deps, now: float) -> int:
    """Publish every delivery whose attempt is due (the sweeper); how many."""
    due = deps.store.due_deliveries(now)
    if due:
        deps.queue.publish([message(d) for d in due])
    return len(due)
