"""usage and webhooks: what the account spent, and the signed events its jobs and trainings announce their end with.

Verifying a webhook (what `imageclassify webhooks verify` does, in any language): take the raw request body
and the `ImageClassify-Signature` header `t=<unix time>,v1=<hex>`; compute HMAC-SHA256 with your secret
(`imageclassify webhooks secret`) over `<t>.<raw body>`; compare with v1 in constant time; refuse a `t` more
than 5 minutes from your clock. Deliveries are at least once: deduplicate on the event's `event_id`.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from imageclassify_client.context import State, json_option, pass_state
from imageclassify_client.errors import UsageProblem

TOLERANCE = 300  # seconds between the signature's time and the receiver's clock


def signature_valid(secret: str, header: str, body: bytes, now: float, tolerance: float = TOLERANCE) -> bool:
    """Whether `header` (ImageClassify-Signature) signs `body` under `secret`, made within `tolerance` of `now`.
    A hostile header (non-ASCII digits or signature) is False, never an exception in the receiver."""
    fields = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    stamp = fields.get("t", "")
    if not (stamp.isascii() and stamp.isdigit()) or abs(now - int(stamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), fields.get("v1", "").encode(errors="replace"))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:1] else "right")
    for row in rows:
        table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
    return table


@click.command()
@click.option("--from", "first", default=None, metavar="YYYY-MM-DD", help="First day (UTC) [default: 29 days "
              "before --to].")
@click.option("--to", "last", default=None, metavar="YYYY-MM-DD", help="Last day (UTC) [default: today].")
@click.option("--group", type=click.Choice(["day", "key", "kind"]), default="day", show_default=True,
              help="One row per day, per API key (its id) or per kind of work (classify, job, training).")
@click.option("--csv", "as_csv", is_flag=True, help="Print the server's CSV export instead of a table.")
@json_option
@pass_state
def usage(state: State, first: str | None, last: str | None, group: str, as_csv: bool) -> None:
    """Tokens spent, refunded and images paid for, at most 366 days at a time (refunds count on the spend's day)."""
    params = {k: v for k, v in (("from", first), ("to", last), ("group", group)) if v}
    client, out = state.client(), state.output
    if as_csv:
        click.echo(client.request("GET", "/usage.csv", params=params).text, nl=False)
        return
    report = client.json("GET", "/usage", params=params)
    if out.json_mode:
        out.emit_json(report)
        return
    rows = [[r.get(group), r.get("spent"), r.get("refunded"), r.get("net"), r.get("images")] for r in report["usage"]]
    rows.append(["total", *(sum(int(r[i] or 0) for r in rows) for i in range(1, 5))])
    out.show(_table(f"usage {report.get('from')} to {report.get('to')}", [group, "spent", "refunded", "net",
                                                                          "images"], rows))


@click.group()
def webhooks() -> None:
    """Your webhook signing secret, the deliveries of your jobs' and trainings' ends, and their verification.

    \b
    A receiver checks each POST: HMAC-SHA256(secret, "<t>.<raw body>") in hex must equal v1 of the header
    ImageClassify-Signature: t=<unix time>,v1=<hex>, compared in constant time, with t within 5 minutes.
    Events come at least once: deduplicate on event_id.
    """


@webhooks.command("secret")
@click.option("--rotate", is_flag=True, help="Make a new secret; the old one stops signing at once.")
@json_option
@pass_state
def webhooks_secret(state: State, rotate: bool) -> None:
    """Show (or rotate) the secret your webhooks are signed with."""
    reply = state.client().json("POST" if rotate else "GET", "/webhooks/secret")
    if state.output.json_mode:
        state.output.emit_json(reply)
    else:
        click.echo(reply["secret"])


@webhooks.command("deliveries")
@json_option
@pass_state
def webhooks_deliveries(state: State) -> None:
    """Your latest webhook deliveries: status, attempts, last error, next attempt."""
    reply = state.client().json("GET", "/webhooks/deliveries")
    if state.output.json_mode:
        state.output.emit_json(reply)
        return
    rows = [[d.get("id"), d.get("type"), d.get("object"), d.get("status"), d.get("attempts"), d.get("last_error"),
             time.strftime("%H:%M:%S", time.localtime(d["next_attempt"])) if d.get("next_attempt") else None]
            for d in reply.get("deliveries", [])]
    state.output.show(_table("webhook deliveries", ["event", "type", "of", "status", "attempts", "last error",
                                                    "next"], rows))


@webhooks.command("verify")
@click.option("--secret", envvar="IMAGECLASSIFY_WEBHOOK_SECRET", required=True,
              help="Your webhook secret [default: $IMAGECLASSIFY_WEBHOOK_SECRET].")
@click.option("--signature", "header", required=True, help="The ImageClassify-Signature header, as received.")
@click.argument("body_file", type=click.Path(dir_okay=False, allow_dash=True), default="-")
def webhooks_verify(secret: str, header: str, body_file: str) -> int:
    """Check a received event: BODY_FILE holds its raw body (- for stdin). Exit 0 when genuine, 1 when not."""
    body = sys.stdin.buffer.read() if body_file == "-" else _read(Path(body_file))
    if signature_valid(secret, header, body, time.time()):
        click.echo("valid")
        return 0
    click.echo("invalid: wrong secret, altered body, or a signature more than 5 minutes old", err=True)
    return 1


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"Cannot read {path}: {exc.strerror}.") from None
