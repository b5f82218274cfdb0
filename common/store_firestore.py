"""The Firestore store: the same contract as SQLite, on Firestore documents.

Every balance change is an optimistic write: read the documents, then commit
one atomic batch whose updates are guarded by the `update_time` that was read
and whose new records (spend, refund, per-image result) must not exist yet. A
concurrent change fails the precondition and the attempt starts over, so two
spends can never both use the same balance. (Firestore transactions livelock
on the emulator under contention; preconditions take no locks.) After many
failed attempts the caller gets a 503 with `Retry-After`: it retries, nothing
is ever oversold.

Documents:
  accounts/u:<username>        username, password_hash, key_hash, tokens, is_admin
  api_keys/<sha256 of key>     username
  spends/<sha256 of spend id>  username, amount, refunded, response
  refunds/<sha256 of id>       spend, amount
  jobs/<id>                    owner, spend_id, classes, ..., counters
  jobs/<id>/images/<sha256>    object, outcome, destination
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from common import errors
from common.store import Account, ImageOutcome, Job, Spend

T = TypeVar("T")
ATTEMPTS = 60
# A lost race: start the attempt over.
CONFLICTS = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Aborted, gexc.Conflict)
TRANSIENT = (gexc.DeadlineExceeded, gexc.ServiceUnavailable, gexc.TooManyRequests, gexc.InternalServerError)


def _doc_id(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class FirestoreStore:
    def __init__(self, project: str) -> None:
        self.db = firestore.Client(project=project)

    def close(self) -> None:
        self.db.close()

    # -- helpers -----------------------------------------------------------------------

    def _account_ref(self, username: str) -> Any:
        return self.db.collection("accounts").document(f"u:{username}")

    def _spend_ref(self, spend_id: str) -> Any:
        return self.db.collection("spends").document(_doc_id(spend_id))

    def _optimistic(self, plan: Callable[[Any], T]) -> T:
        """Run `plan(batch)` (reads, then guarded writes queued on the batch) until its commit wins."""
        for attempt in range(ATTEMPTS):
            batch = self.db.batch()
            try:
                result = plan(batch)
                if len(batch):
                    batch.commit()
                return result
            except CONFLICTS + TRANSIENT:
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))
        raise errors.Unavailable("The account database is busy. Retry in a moment.")

    def _guarded(self, batch: Any, snap: Any, fields: dict[str, Any]) -> None:
        """Update a document only if nobody changed it since `snap` was read."""
        batch.update(snap.reference, fields, option=self.db.write_option(last_update_time=snap.update_time))

    @staticmethod
    def _account(snap: Any) -> Account | None:
        if not snap.exists:
            return None
        d = snap.to_dict() or {}
        return Account(d["username"], d["password_hash"], int(d["tokens"]), bool(d.get("is_admin")))

    @staticmethod
    def _unknown(username: str) -> errors.NotFound:
        return errors.NotFound(f"There is no account named {username!r}.", code="unknown_user")

    def _read_account(self, username: str) -> Any:
        snap = self._account_ref(username).get()
        if not snap.exists:
            raise self._unknown(username)
        return snap

    # -- accounts ----------------------------------------------------------------------

    def create_account(self, username: str, password_hash: str, key_hash: str, tokens: int,
                       is_admin: bool = False) -> Account:
        ref = self._account_ref(username)

        def plan(batch: Any) -> None:
            if ref.get().exists:
                raise errors.Conflict(f"The username {username!r} is taken. Choose another one.",
                                      code="username_taken")
            batch.create(ref, {"username": username, "password_hash": password_hash, "key_hash": key_hash,
                               "tokens": tokens, "is_admin": is_admin, "created": time.time()})
            batch.set(self.db.collection("api_keys").document(key_hash), {"username": username})

        self._optimistic(plan)
        return Account(username, password_hash, tokens, is_admin)

    def get_account(self, username: str) -> Account | None:
        return self._account(self._account_ref(username).get())

    def account_by_key(self, key_hash: str) -> Account | None:
        snap = self.db.collection("api_keys").document(key_hash).get()
        if not snap.exists:
            return None
        return self.get_account(snap.get("username"))

    def set_key(self, username: str, key_hash: str) -> None:
        keys = self.db.collection("api_keys")

        def plan(batch: Any) -> None:
            snap = self._read_account(username)
            old = snap.get("key_hash")
            if old:
                batch.delete(keys.document(old))
            batch.set(keys.document(key_hash), {"username": username})
            self._guarded(batch, snap, {"key_hash": key_hash})

        self._optimistic(plan)

    def _update(self, username: str, fields: dict[str, Any]) -> None:
        try:
            self._account_ref(username).update(fields)
        except gexc.NotFound:
            raise self._unknown(username) from None

    def set_admin(self, username: str, is_admin: bool) -> None:
        self._update(username, {"is_admin": is_admin})

    def set_password(self, username: str, password_hash: str) -> None:
        self._update(username, {"password_hash": password_hash})

    # -- ledger ------------------------------------------------------------------------

    def _charge(self, batch: Any, account: Any, amount: int, spend_id: str) -> int:
        balance = int(account.get("tokens"))
        if balance < amount:
            raise errors.InsufficientTokens(balance, amount)
        self._guarded(batch, account, {"tokens": balance - amount})
        batch.create(self._spend_ref(spend_id), {"username": account.get("username"), "amount": amount,
                                                 "refunded": 0, "response": None, "created": time.time()})
        return balance - amount

    def spend(self, username: str, amount: int, spend_id: str) -> Spend:
        def plan(batch: Any) -> Spend:
            prior = self._spend_ref(spend_id).get()
            account = self._read_account(username)
            if prior.exists:
                return Spend(spend_id, int(account.get("tokens")), replayed=True, response=prior.get("response"))
            return Spend(spend_id, self._charge(batch, account, amount, spend_id))

        return self._optimistic(plan)

    def _plan_refund(self, batch: Any, account: Any, spend_id: str, amount: int, refund_id: str) -> int:
        """Queue a refund on `batch` unless it was applied already or would exceed the spend."""
        balance = int(account.get("tokens"))
        refund_ref = self.db.collection("refunds").document(_doc_id(refund_id))
        if refund_ref.get().exists:
            return balance
        spend = self._spend_ref(spend_id).get()
        if not spend.exists or spend.get("username") != account.get("username"):
            return balance
        if spend.get("refunded") + amount > spend.get("amount"):
            return balance  # never refund more than was spent
        batch.create(refund_ref, {"spend": spend.id, "amount": amount})
        self._guarded(batch, spend, {"refunded": spend.get("refunded") + amount})
        self._guarded(batch, account, {"tokens": balance + amount})
        return balance + amount

    def refund(self, username: str, spend_id: str, amount: int, refund_id: str) -> int:
        return self._optimistic(
            lambda batch: self._plan_refund(batch, self._read_account(username), spend_id, amount, refund_id))

    def refill(self, username: str, amount: int) -> int:
        def plan(batch: Any) -> int:
            account = self._read_account(username)
            balance = int(account.get("tokens")) + amount
            self._guarded(batch, account, {"tokens": balance})
            return balance

        return self._optimistic(plan)

    def save_response(self, spend_id: str, response: dict[str, Any]) -> None:
        self._spend_ref(spend_id).update({"response": response})

    # -- jobs --------------------------------------------------------------------------

    def create_job(self, job: Job, spend_amount: int, spend_id: str) -> Job:
        job_ref = self.db.collection("jobs").document(job.id)

        def plan(batch: Any) -> None:
            if spend_amount:
                self._charge(batch, self._read_account(job.owner), spend_amount, spend_id)
            batch.create(job_ref, {"owner": job.owner, "spend_id": spend_id, "classes": job.classes,
                                   "source": job.source, "min_score": job.min_score, "status": job.status,
                                   "total": job.total, "processed": 0, "unmatched": 0, "failed": 0,
                                   "matched": {}, "created": job.created})

        self._optimistic(plan)
        return job

    def get_job(self, job_id: str) -> Job | None:
        snap = self.db.collection("jobs").document(job_id).get()
        if not snap.exists:
            return None
        d = snap.to_dict() or {}
        return Job(id=job_id, owner=d["owner"], classes=list(d["classes"]), source=d["source"],
                   min_score=d["min_score"], total=d["total"], status=d["status"], processed=d["processed"],
                   matched=dict(d.get("matched") or {}), unmatched=d["unmatched"], failed=d["failed"],
                   created=d["created"])

    def record_image(self, job_id: str, outcome: ImageOutcome) -> bool:
        job_ref = self.db.collection("jobs").document(job_id)
        image_ref = job_ref.collection("images").document(_doc_id(outcome.object))

        def plan(batch: Any) -> bool:
            job = job_ref.get()
            if not job.exists:
                raise errors.NotFound(f"There is no job {job_id!r}.", code="unknown_job")
            if image_ref.get().exists:
                return False  # a redelivered message: already counted
            batch.create(image_ref, {"object": outcome.object, "outcome": outcome.outcome,
                                     "destination": outcome.destination, "detail": outcome.detail})
            processed = job.get("processed") + 1
            update: dict[str, Any] = {"processed": processed,
                                      "status": "done" if processed >= job.get("total") else "running"}
            if outcome.outcome == "failed":
                update["failed"] = job.get("failed") + 1
                self._plan_refund(batch, self._read_account(job.get("owner")), job.get("spend_id"), 1,
                                  f"{job_id}:{outcome.object}")
            elif outcome.outcome == "unmatched":
                update["unmatched"] = job.get("unmatched") + 1
            else:
                matched = dict(job.get("matched") or {})
                matched[outcome.outcome] = matched.get(outcome.outcome, 0) + 1
                update["matched"] = matched
            self._guarded(batch, job, update)
            return True

        return self._optimistic(plan)

    def set_job_status(self, job_id: str, status: str) -> None:
        self.db.collection("jobs").document(job_id).update({"status": status})
