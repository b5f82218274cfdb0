"""Purging a deleted account: its records (keys, spends, jobs, usage), its models and their files, its space.

Each step re-lists what is left, so a purge killed at any point is finished by the next one: the request that
deleted the account runs it once, the sweeper runs every deletion still due (`Store.deletions_due`).
"""

from __future__ import annotations

import contextlib
import logging

from common.adapters.deps import Deps
from common.adapters.storage.port import MODELS, list_all
from common.core import errors
from common.files import spaces
from common.records.usage import OBJECTS

log = logging.getLogger("imageclassify.deletion")
BATCH = 25


def purge(username: str, deps: Deps) -> None:
    """Delete everything the deleted account `username` held, then mark its deletion finished."""
    store, storage = deps.store, deps.storage
    if not store.close_account_leases(username):  # its spends are summed by the close: the next sweep, once expired
        raise errors.Unavailable("A token lease of the deleted account still has a request in progress.",
                                 code="lease_open")
    store.purge_records(username)  # its jobs first: a worker drops a message whose job is gone, and writes nothing
    for record in store.models_of(username):
        with contextlib.suppress(errors.NotFound):  # a purge before this one deleted it
            store.delete_model(username, record.name)  # (a classify process's cached head is never asked again)
    for key in list(list_all(storage, f"{MODELS}{username}/")):  # every version's files, even one a crash left
        with contextlib.suppress(errors.NotFound):
            storage.delete(key)
    keys = list(list_all(storage, spaces.space(username)))
    for start in range(0, len(keys), BATCH):
        batch = keys[start:start + BATCH]
        store.delete_records(OBJECTS, batch)  # the size records first: a crash leaves files, found again
        for key in batch:
            with contextlib.suppress(errors.NotFound):
                storage.delete(key)
    store.finish_deletion(username)


def purge_due(deps: Deps, now: float | None = None) -> list[str]:
    """Finish every deletion still due (a process died during its purge); the accounts purged."""
    done = []
    for username in deps.store.deletions_due(now):
        try:
            purge(username, deps)
            done.append(username)
        except errors.AppError as exc:  # e.g. a busy store: the next sweep tries again
            log.warning("the purge of a deleted account did not finish: %s", exc.message)
    return done
