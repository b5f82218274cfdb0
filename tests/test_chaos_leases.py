"""kill -9 of a process spending from a token lease mid-traffic: the sweeper closes the lease exactly.

The local stack serves one busy account (so it takes leases) until it is killed; it is not restarted (a
restart would release its leases at once): the sweeper's own steps run on its data, as Cloud Scheduler's
call would once the lease expired. Every spend record counts, the rest of the block goes back, once.
"""

from __future__ import annotations

import time
from pathlib import Path

from common.adapters.store.sqlite import SqliteDocuments
from common.records.leases import LEASES
from common.records.ledger import SPENDS
from common.records.store import Store
from infra import photos
from tests.burst import Burst
from tests.stack import LocalStack
from tests.test_chaos import integrity_ok
from tests.waiting import wait_until


def test_kill9_of_a_lease_holder_then_sweep_is_exact(tmp_path: Path, models_dir: Path) -> None:
    stack = LocalStack(tmp_path / "data", models_dir, RESERVATION_LEASE="8", LEASE_MIN_RATE="1",
                       LEASE_SECONDS="30", SWEEP_INTERVAL="3600").start()
    granted = 2000
    books = Store(SqliteDocuments(tmp_path / "data" / "accounts.db"))
    try:
        user = stack.user("leased", granted)
        burst = Burst(stack.url, user["headers"], photos.data("coffee.png"), 8).start()

        def leased() -> bool:
            account = books.docs.get("accounts", "leased") or {}
            return bool(account.get("leases")) and burst.successes > 20

        wait_until(leased, 120, "the stack never took a token lease")  # mid-traffic, from a lease: kill -9
        stack.kill()
        burst.stop()
    finally:
        stack.kill()
    account = books.docs.get("accounts", "leased")
    assert account is not None and account["leases"], "the killed process held no lease"
    lease_ids = list(account["leases"])
    now = time.time()
    assert books.close_expired_leases(now) == 0  # not expired yet: a live holder may still be spending from it
    later = now + 3600  # the sweeper, once the lease and its reservations expired
    books.expire_reservations(later)
    assert books.close_expired_leases(later) == len(lease_ids)
    account = books.docs.get("accounts", "leased")
    assert account is not None and not account["leases"]
    spent = granted - int(account["tokens"])
    from_leases = sum(books.docs.get(LEASES, lease_id)["spent"] for lease_id in lease_ids)  # type: ignore[index]
    assert from_leases > 0, "no request was served from the killed process's lease"
    assert spent == granted - books.balance("leased")
    # a request whose reply was lost in the kill may have been charged: never more than those
    print(f"lease kill: {burst.successes} classified, {burst.unknown} replies lost in the kill, {spent} tokens spent")
    assert burst.successes <= spent <= burst.successes + burst.unknown, (burst.successes, burst.unknown, spent)
    assert not books.docs.find_below(SPENDS, "expires", float("inf"))  # every reservation closed
    assert books.close_expired_leases(later + 3600) == 0 and books.expire_reservations(later + 3600) == 0
    assert granted - int(books.docs.get("accounts", "leased")["tokens"]) == spent  # type: ignore[index]
    books.close()
    assert integrity_ok(tmp_path / "data" / "accounts.db")
