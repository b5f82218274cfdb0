"""The usage history's and the webhooks' record rules on every store adapter (SQLite, Firestore, DynamoDB).

- Spends are found by account and day only: another account's spends of the same day are not read.
- A finished job with a webhook has its delivery recorded in the commit that ends it (once, however many times
  its end is reached); a job without one has none.
- A delivery is claimed by one attempt at a time, retried on its schedule, and ends delivered or failed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from common.records.records import ImageOutcome, Job
from common.records.store import Store


def _job(store: Store, owner: str, job_id: str, webhook: str | None) -> Job:
    job = Job(id=job_id, owner=owner, classes=["dog"], source="all/", min_score=0.3, total=1, created=time.time(),
              webhook=webhook)
    return store.create_job(job, 1, f"{owner}:job:{job_id}", key_id="k1")


def test_spends_are_found_by_account_and_day(store: Store) -> None:
    for name in ("alice", "bob"):
        store.create_account(name, "h", f"k-{name}", 20)
    spend, _, _ = store.reserve("alice", 3, 60.0, key_id="key-a")
    store.settle("alice", spend, 2)
    _job(store, "alice", "j1", None)
    store.reserve("bob", 5, 60.0)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    found = store.spends_on("alice", ["2001-01-01", today], 100)
    assert sorted((d["kind"], d["key_id"], d["amount"], d["refunded"]) for d in found) == [
        ("classify", "key-a", 3, 1), ("job", "k1", 1, 0)]
    assert store.spends_on("carol", [today], 100) == []
    try:
        store.spends_on("alice", [today], 1)
        raise AssertionError("more spends than the limit must be refused")
    except Exception as exc:  # noqa: BLE001 - the domain error's code is what counts
        assert getattr(exc, "code", "") == "usage_range_too_large"


def test_a_finished_job_records_its_delivery_once(store: Store) -> None:
    store.create_account("owner", "h", "k-owner", 5)
    _job(store, "owner", "j2", "https://example.com/hook")
    _job(store, "owner", "j3", None)
    assert store.due_deliveries(time.time() + 1) == []
    for job_id in ("j2", "j3"):
        store.record_image(job_id, ImageOutcome("a.png", "failed"))
        store.finish_job(job_id, "cancelled")  # already done: changes nothing
    assert store.due_deliveries(time.time() + 1) == ["evt_job_j2"]
    listed = store.deliveries_of("owner")
    assert [(d["id"], d["object"], d["status"], d["attempts"]) for d in listed] == [
        ("evt_job_j2", "j2", "pending", 0)]
    assert store.deliveries_of("someone") == [] and store.delivery_of("someone", "evt_job_j2") is None


def test_a_delivery_is_claimed_once_retried_then_failed(store: Store) -> None:
    store.create_account("owner", "h", "k-owner", 5)
    _job(store, "owner", "j4", "https://example.com/hook")
    store.finish_job("j4", "cancelled")
    now = time.time() + 1
    claimed = store.claim_delivery("evt_job_j4", 30.0, now)
    assert claimed is not None and claimed["attempts"] == 1 and claimed["event"]["status"] == "cancelled"
    assert store.claim_delivery("evt_job_j4", 30.0, now) is None  # held by the first attempt
    assert store.delivery_outcome("evt_job_j4", "down", None, (5.0,), now) == "pending"
    assert store.claim_delivery("evt_job_j4", 30.0, now + 1) is None  # not due yet
    assert store.due_deliveries(now + 6) == ["evt_job_j4"]
    assert store.claim_delivery("evt_job_j4", 30.0, now + 6) is not None
    assert store.delivery_outcome("evt_job_j4", "down again", 503, (5.0,), now + 6) == "failed"
    final = store.delivery_of("owner", "evt_job_j4")
    assert final is not None and (final["status"], final["attempts"], final["last_status"]) == ("failed", 2, 503)
    assert final["next_attempt"] is None and store.due_deliveries(now + 10_000) == []


def test_the_webhook_secret_is_made_once_and_rotated(store: Store) -> None:
    first = store.webhook_secret("owner")
    assert first.startswith("whsec_") and store.webhook_secret("owner") == first
    rotated = store.webhook_secret("owner", rotate=True)
    assert rotated != first and store.webhook_secret("owner") == rotated != store.webhook_secret("other")


def test_the_sweeper_publishes_what_is_due_and_a_stale_message_changes_nothing(store: Store) -> None:
    """A delivery whose message was lost (a crash right after the finishing commit) is published by the sweep;
    a message for a delivery that is not due (held by an attempt, or delivered) does nothing."""
    from common.accounts import deliveries
    from common.adapters.deps import Deps
    from common.core import config

    published: list[dict[str, Any]] = []

    class Queue:
        def publish(self, messages: Sequence[dict[str, Any]]) -> None:
            published.extend(messages)

    deps = Deps(config.settings, store=store, queue=Queue())
    store.create_account("owner", "h", "k-owner", 5)
    _job(store, "owner", "j5", "https://example.com/hook")
    store.finish_job("j5", "cancelled")
    assert deliveries.publish_due(deps, time.time() + 1) == 1
    assert [m["delivery"] for m in published] == ["evt_job_j5"] and deliveries.is_delivery(published[0])
    store.claim_delivery("evt_job_j5", 600.0)
    assert deliveries.handle(published[0], deps) is False  # held by the attempt that claimed it: no second POST
    assert deliveries.publish_due(deps, time.time() + 1) == 0


def test_a_deleted_accounts_webhooks_are_neither_recorded_nor_attempted_nor_signed(store: Store) -> None:
    """After the commit that deletes an account: a job ending records no delivery (the purge may have run), one
    recorded before is not claimed, and an attempt claimed before makes no secret that would outlive the purge."""
    from common.accounts import deliveries
    from common.adapters.deps import Deps
    from common.core import config
    from common.records.webhooks import SECRETS

    store.create_account("gone", "h", "k-gone", 5)
    _job(store, "gone", "j6", "https://example.com/hook")
    _job(store, "gone", "j7", "https://example.com/hook")
    store.finish_job("j6", "cancelled")  # recorded while the account lived
    claimed = store.claim_delivery("evt_job_j6", 30.0, time.time() + 1)
    assert claimed is not None
    store.mark_deleted("gone", time.time() + 3600)
    store.finish_job("j7", "cancelled")  # ends after the deletion: nothing to deliver
    assert store.docs.get("webhook_deliveries", "evt_job_j7") is None
    assert store.claim_delivery("evt_job_j6", 30.0, time.time() + 100) is None  # its claim ran out: not again
    deps = Deps(config.settings, store=store)
    assert deliveries.handle(deliveries.message("evt_job_j6"), deps) is False
    try:
        store.webhook_secret("gone")  # the attempt claimed before the deletion, reaching for its secret
        raise AssertionError("a deleted account's webhook secret must not be made")
    except Exception as exc:  # noqa: BLE001 - the domain error's code is what counts
        assert getattr(exc, "code", "") == "not_found"
    assert store.docs.get(SECRETS, "gone") is None
