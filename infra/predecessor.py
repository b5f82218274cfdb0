"""One local stack per data folder, and what its previous run left behind released at start.

A laptop's stack that was killed (kill -9, a power cut) held reservations for
the requests it was serving. Their lease would refund them eventually; but
the next start knows better: it holds the data folder's lock, so the run that
made them is dead, and it refunds them at once (and lets their
Idempotency-Keys run again) before it serves anything. In the cloud an
instance that dies never comes back, so its reservations wait for the lease
and the scheduled sweeper.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from pathlib import Path
from typing import IO

_held: list[IO[str]] = []  # the lock lives as long as the process; the kernel drops it when the process dies


def holder(data_dir: Path) -> str:
    """The holder name every run of the stack on this data folder gives its reservations."""
    return f"localstack:{data_dir}"


def hold(data_dir: Path) -> None:
    """Take the data folder's lock, or stop: another stack is serving it (its reservations are alive)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "stack.lock", "a")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(f"Another local stack is serving {data_dir}; stop it first, or use another --data-dir.")
    _held.append(lock)
    os.environ["RESERVATION_HOLDER"] = holder(data_dir)


def release_predecessor() -> int:
    """Refund the reservations of this data folder's previous run (dead: we hold its lock); how many."""
    from common.adapters.backends import get_store
    from common.core.config import settings

    store, holder = get_store(), settings().billing.reservation_holder
    released = store.release_holder(holder)
    store.release_holder_leases(holder)  # then its token leases, whose reservations are all closed now
    if released:
        logging.getLogger("imageclassify.sweeper").warning(
            "released %d reservation(s) of requests the previous run did not finish", released)
    return released
