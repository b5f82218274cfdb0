"""Operator commands. Admins are never created through the API.

    python -m common.ops.admin create-admin NAME  # asks for a password (or reads ADMIN_PASSWORD)
    python -m common.ops.admin promote NAME        # an existing account becomes admin
    python -m common.ops.admin refill NAME AMOUNT
    python -m common.ops.admin jobs [--json]       # jobs and training runs not finished: owner, status, progress, age
    python -m common.ops.admin redrive ID          # re-publish what a stuck job (ID) or run (OWNER/NAME) misses
    python -m common.ops.admin sweep               # run the sweeper once (stalled work closed and refunded)

The store, bucket and queue are the configured ones (STORE_BACKEND, SQLITE_PATH, GOOGLE_CLOUD_PROJECT, QUEUE_BACKEND
...); with DATA_DIR=<the local stack's data folder>, the local stack's. Re-driven messages are signed with
INTERNAL_SECRET (the local stack's own key when it is not set).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from common import bootstrap
from common.accounts import admins
from common.core import errors
from common.ops import operations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.ops.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-admin", help="create an admin account (or promote and reset its password)")
    create.add_argument("username")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    promote = sub.add_parser("promote", help="make an existing account an admin")
    promote.add_argument("username")
    refill = sub.add_parser("refill", help="add tokens to an account")
    refill.add_argument("username")
    refill.add_argument("amount", type=int)
    jobs = sub.add_parser("jobs", help="list the jobs and training runs that are not finished")
    jobs.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    redrive = sub.add_parser("redrive", help="re-publish the messages a stuck job or training run still misses")
    redrive.add_argument("id", help="a job id, or OWNER/NAME for a training run")
    sub.add_parser("sweep", help="run the sweeper once")
    args = parser.parse_args(argv)

    try:
        if args.command in OPERATIONS:
            OPERATIONS[args.command](args)
        elif args.command == "create-admin":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass(f"Password for {args.username}: ")
            account = admins.ensure_admin(args.username, password, bootstrap.deps())
            print(f"{account.username} is an admin with {account.tokens} tokens.")
        elif args.command == "promote":
            account = admins.ensure_admin(args.username, None, bootstrap.deps())
            print(f"{account.username} is now an admin.")
        else:
            if not 1 <= args.amount <= admins.MAX_REFILL:
                raise errors.BadRequest(f"amount must be from 1 to {admins.MAX_REFILL}.")
            store = bootstrap.deps().store
            if store.get_account(args.username) is None:
                raise errors.NotFound(f"There is no account named {args.username!r}.")
            print(f"{args.username} now has {store.refill(args.username, args.amount)} tokens.")
    except errors.AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _jobs(args: argparse.Namespace) -> None:
    rows = operations.unfinished(bootstrap.deps())
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = [("KIND", "ID", "OWNER", "STATUS", "PROGRESS", "AGE", "IDLE")] + [
        (r["kind"], r["id"], r["owner"], r["status"], f"{r['done']}/{r['total']} ({r['percentage']:g}%)",
         _duration(r["age_seconds"]), _duration(r["idle_seconds"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("Every job and training run is finished.")


def _duration(seconds: float) -> str:
    """5s, 4m07s, 2h05m, 3d04h."""
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _redrive(args: argparse.Namespace) -> None:
    operations.local_secret()
    done = operations.redrive(args.id, bootstrap.deps())
    print(f"{done['kind']} {done['id']} ({done['status']}): {done['published']} message(s) published again.")


def _sweep(args: argparse.Namespace) -> None:
    from common.ops.sweeper import sweep

    print(json.dumps(sweep()))


OPERATIONS: dict[str, Any] = {"jobs": _jobs, "redrive": _redrive, "sweep": _sweep}


if __name__ == "__main__":
    sys.exit(main())
