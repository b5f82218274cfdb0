"""What an admin does over HTTP (the console's admin page): find accounts, suspend and resume them, read the
totals and the audit log. Refills are `admins.refill`; jobs are the operator's `common/ops/operations.py`.

Every call checks the admin first: to anyone else the admin routes do not exist (404, the answer of a path
nobody serves), so they reveal nothing to a curious customer.
"""

from __future__ import annotations

import re
import time
from typing import Any

from common.accounts.bodies import USERNAME_RULE
from common.adapters.deps import Deps
from common.core import errors
from common.records.records import Account
from common.records.totals import day_of

PAGE = 50
SEARCH = re.compile(r"^[A-Za-z0-9_.-]{0,64}(?!\n)$")  # a username's characters: any prefix of one


def require_admin(account: Account, path: str) -> None:
    if not account.is_admin:
        raise errors.NotFound(f"There is no route {path[:100]!r} here.", code="not_found")


def search(query: Any, deps: Deps) -> dict[str, Any]:
    """The first PAGE accounts whose username begins with `query`, in username order."""
    if not isinstance(query, str) or not SEARCH.search(query):
        raise errors.BadRequest("q must be the beginning of a username: up to 64 letters, digits, '_', '.' or "
                                "'-' (empty for the first accounts).", code="invalid_query")
    return {"accounts": deps.store.search_accounts(query, PAGE)}


def suspend(admin: Account, username: str, suspended: bool, deps: Deps) -> None:
    if not USERNAME_RULE.search(username):  # no account can have that name: never sent to the store
        raise errors.NotFound(f"There is no account named {username[:80]!r}.", code="unknown_user")
    deps.store.set_suspended(admin.username, username, suspended)


def totals(deps: Deps, now: float | None = None) -> dict[str, Any]:
    day = day_of(now or time.time())
    return {"day": day, **deps.store.totals(day)}


def audit_log(deps: Deps) -> dict[str, Any]:
    return {"events": deps.store.audit_events(PAGE * 2)}
