"""The usage history: what an account spent and got refunded, per day, per API key or per kind of work.

Read from the spend records themselves (`common/records/spends.py`), not from
counters kept beside them: the ledger's records are the truth, a spend costs no
extra write, and there is no aggregate document for concurrent requests to
queue on. The price is paid on reading, which is bounded: at most `MAX_DAYS`
per request and `MAX_SPENDS` spends read.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Mapping
from typing import Any

from common.adapters.deps import Deps
from common.core import errors
from common.records.records import Account

MAX_DAYS, DEFAULT_DAYS, MAX_SPENDS = 366, 30, 50_000
GROUPS = ("day", "key", "kind")
KINDS = ("classify", "job", "training")
NO_KEY = "password"  # the `key` of spends made with the password rather than an API key
COLUMNS = ("spent", "refunded", "net", "images")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _date(value: str | None, name: str, default: datetime.date) -> datetime.date:
    if value is None or value == "":
        return default
    try:
        if len(value) != 10:
            raise ValueError(value)
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise errors.BadRequest(f"{name} must be a date as YYYY-MM-DD (e.g. 2026-01-31), not {value[:40]!r}.",
                                code="invalid_date") from None


def parse(args: Mapping[str, str]) -> tuple[datetime.date, datetime.date, str]:
    """(first day, last day, grouping) of a query: `to` today (UTC) and `from` 30 days before by default."""
    today = datetime.datetime.now(datetime.UTC).date()
    last = _date(args.get("to"), "to", today)
    first = _date(args.get("from"), "from", last - datetime.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise errors.BadRequest(f"from ({first}) is after to ({last}).", code="invalid_date")
    if (last - first).days + 1 > MAX_DAYS:
        raise errors.BadRequest(f"At most {MAX_DAYS} days per request ({first} to {last} is "
                                f"{(last - first).days + 1}); ask for a shorter range.", code="usage_range_too_large")
    group = args.get("group") or "day"
    if group not in GROUPS:
        raise errors.BadRequest(f"group must be one of {', '.join(GROUPS)}, not {group[:40]!r}.",
                                code="invalid_group")
    return first, last, group


def _label(spend: dict[str, Any], group: str) -> str:
    if group == "day":
        return str(spend["usage_day"]).rsplit("|", 1)[1]
    if group == "kind":
        return str(spend.get("kind") or "classify")
    return str(spend.get("key_id") or NO_KEY)


def history(account: Account, args: Mapping[str, str], deps: Deps) -> dict[str, Any]:
    """`{from, to, group, usage: [{<group>, spent, refunded, net, images}]}`: every day of the range when grouped by
    day (zeros included, for a chart), every kind when by kind, the keys that spent when by key."""
    first, last, group = parse(args)
    days = [(first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    starts = {"day": days, "kind": list(KINDS), "key": []}[group]
    rows: dict[str, dict[str, Any]] = {label: _row(group, label) for label in starts}
    for spend in deps.store.spends_on(account.username, days, MAX_SPENDS):
        label = _label(spend, group)
        row = rows.setdefault(label, _row(group, label))
        amount, refunded = int(spend["amount"]), int(spend.get("refunded", 0))
        row["spent"] += amount
        row["refunded"] += refunded
        row["net"] += amount - refunded
        row["images"] += amount - refunded  # one token per image classified, sorted or trained on
    return {"from": first.isoformat(), "to": last.isoformat(), "group": group,
            "usage": [rows[label] for label in (starts if group == "day" else sorted(rows))]}


def _row(group: str, label: str) -> dict[str, Any]:
    return {group: label, "spent": 0, "refunded": 0, "net": 0, "images": 0}


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet never runs as a formula (OWASP's CSV injection rule)."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def as_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([report["group"], *COLUMNS])
    for row in report["usage"]:
        writer.writerow([_cell(row[report["group"]]), *(_cell(row[c]) for c in COLUMNS)])
    return out.getvalue()
