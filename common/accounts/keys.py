"""Named API keys: made (the secret shown once), listed, revoked one at a time; each with a scope.

What a scope lets a key do is one table in the HTTP layer (`common/http/scopes.py`). A key's `last_used` is
written at most once per `LAST_USED_EVERY` per key, on the key's own record: a keyed request stays one read.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from common.accounts import service
from common.accounts.bodies import NewKey
from common.adapters.deps import Deps
from common.core import bodies, errors
from common.records.accounts import key_record
from common.records.records import Account

LAST_USED_EVERY = 600.0  # seconds: `last_used` is as coarse as this
SHOWN = ("id", "name", "prefix", "scope", "created")


def shown(record: dict[str, Any]) -> dict[str, Any]:
    """What a listing says of a key (never its hash)."""
    return {**{field: record.get(field) for field in SHOWN}, "scope": record.get("scope", "all"),
            "last_used": record.get("last_used")}


def create(account: Account, body: dict[str, Any], deps: Deps) -> dict[str, Any]:
    wanted = bodies.convert(NewKey, body)
    key, hashed = service.new_api_key()
    record = key_record(account.username, service.key_prefix(key), wanted.name, wanted.scope)
    deps.store.add_named_key(hashed, record, deps.settings.accounts.max_keys)
    return {**{field: record[field] for field in SHOWN}, "key": key}  # the key, shown this once


def listing(account: Account, deps: Deps) -> dict[str, Any]:
    keys = [shown(doc) for _, doc in deps.store.keys_of(account.username)]
    return {"keys": sorted(keys, key=lambda k: (k["created"] or 0, k["id"] or ""))}


def revoke(account: Account, key_id: str, deps: Deps) -> None:
    """Revoke one key at once; the account's others keep working. Another account's key id is a 404."""
    if not deps.store.revoke_api_key(account.username, key_id):
        raise errors.NotFound("You have no key with that id: list your keys with GET /keys.", code="unknown_key")


def seen(key_hash: str, record: dict[str, Any], deps: Deps, now: float | None = None) -> None:
    """Note the key's use when its `last_used` is older than LAST_USED_EVERY; a busy store costs no request."""
    now = now or time.time()
    if now - float(record.get("last_used") or 0) >= LAST_USED_EVERY:
        with contextlib.suppress(errors.Unavailable):
            deps.store.touch_key(key_hash, now, LAST_USED_EVERY)
