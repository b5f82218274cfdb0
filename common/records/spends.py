"""An account's spends, found by account and day: what its usage history is read from.

Each spend carries `usage_day` (`<account>|<UTC day>`, set when it is made,
`common/records/ledger.py`), an indexed field on every backend, so reading a
day costs one query that touches that account's spends of that day only. A
spend's refunds are netted on the spend itself (its `refunded`), so they count
on the day the spend was made. Spends made before `usage_day` existed are not
found.
"""

from __future__ import annotations

from common.core import errors
from common.records.ledger import SPENDS
from common.records.port import Doc, DocumentStore


class SpendHistory:
    docs: DocumentStore

    def spends_on(self, username: str, days: list[str], limit: int) -> list[Doc]:
        """The account's spends made on `days` (UTC, YYYY-MM-DD); a 400 `usage_range_too_large` when there are
        more than `limit`, so one request's reading stays bounded."""
        found: list[Doc] = []
        for day in days:
            rows = self.docs.find(SPENDS, "usage_day", f"{username}|{day}", limit - len(found) + 1)
            found += [doc for _, doc in rows if doc.get("username") == username]
            if len(found) > limit:
                raise errors.BadRequest(f"More than {limit:,} charges in this range: ask for fewer days at a time "
                                        f"(e.g. from={day}).", code="usage_range_too_large")
        return found
