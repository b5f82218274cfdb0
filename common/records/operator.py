"""The operator's records: suspension, last activity, the audit log and the day's totals.

- An admin's action (refill, suspend, resume) is written in the same commit as its audit event; a re-drive
  (messages published, no record changed) is recorded once it is done.
- Suspension is a flag on the account document, which every authenticated request reads already: checking it
  costs no read and no write.
- Last activity is written at most once per `ACTIVE_EVERY` seconds per account, by the request that finds it
  older: never a write per request.
- The day's totals: `common/records/totals.py`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from common.core import errors
from common.records.accounts import ACCOUNTS, read_account, touch
from common.records.jobs import JOBS
from common.records.models import MODELS
from common.records.port import DocumentStore, Tx
from common.records.records import Job, ModelRecord
from common.records.totals import read_totals

AUDIT = "audit"
ACTIVE_EVERY = 3600.0
LATEST = 10**16  # audit keys count down from here (microseconds), so key order is newest first


def audit(tx: Tx, admin: str, action: str, target: str, **detail: Any) -> None:
    at = time.time()
    key = f"{LATEST - int(at * 1e6):016d}-{secrets.token_hex(4)}"
    tx.put(AUDIT, key, {"admin": admin, "action": action, "target": target, "at": at, **detail})


class OperatorRecords:
    docs: DocumentStore

    def audited(self, admin: str, action: str, target: str, work: Callable[[Tx], Any], **detail: Any) -> Any:
        """Run an admin's `work` and record it in one commit."""
        def attempt(tx: Tx) -> Any:
            result = work(tx)
            audit(tx, admin, action, target, **detail)
            return result

        return self.docs.transact(attempt)

    def set_suspended(self, admin: str, username: str, suspended: bool) -> None:
        def work(tx: Tx) -> None:
            account = read_account(tx, username)
            if account.get("is_admin"):
                raise errors.Conflict(f"{username} is an administrator; administrators are not suspended over "
                                      "HTTP (an operator demotes one with `python -m common.ops.admin`).",
                                      code="admin_not_suspendable")
            tx.put(ACCOUNTS, username, {**account, "suspended": suspended})

        self.audited(admin, "suspend" if suspended else "resume", username, work)

    def note_activity(self, username: str, seen: float, now: float | None = None) -> None:
        """Set the account's `last_active` when the value read (`seen`) is older than ACTIVE_EVERY."""
        now = now or time.time()
        if now - seen >= ACTIVE_EVERY:
            touch(self.docs, ACCOUNTS, username, "last_active", now, ACTIVE_EVERY)

    def search_accounts(self, prefix: str, limit: int = 50) -> list[dict[str, Any]]:
        return [{"username": doc.get("username", key), "tokens": int(doc.get("tokens", 0)),
                 "suspended": bool(doc.get("suspended")), "admin": bool(doc.get("is_admin")),
                 "last_active": doc.get("last_active")}
                for key, doc in self.docs.find_prefix(ACCOUNTS, prefix, limit)]

    def audit_events(self, limit: int = 100) -> list[dict[str, Any]]:
        return [doc for _, doc in self.docs.find_prefix(AUDIT, "", limit)]

    def failed_jobs(self, limit: int = 100) -> list[Job]:
        return [Job.from_doc(doc) for _, doc in self.docs.find(JOBS, "status", "failed", limit)]

    def failed_models(self, limit: int = 100) -> list[ModelRecord]:
        return [ModelRecord.from_doc(doc) for _, doc in self.docs.find(MODELS, "status", "failed", limit)]

    def totals(self, day: str) -> dict[str, int]:
        return read_totals(self.docs, day)
