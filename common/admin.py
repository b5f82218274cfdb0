"""Operator commands. Admins are never created through the API.

    python -m common.admin create-admin NAME      # asks for a password (or reads ADMIN_PASSWORD)
    python -m common.admin promote NAME            # an existing account becomes admin
    python -m common.admin refill NAME AMOUNT

The store is the configured one (STORE_BACKEND, SQLITE_PATH, GOOGLE_CLOUD_PROJECT ...).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from common import admins, errors
from common.backends import get_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.admin", description=__doc__,
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
    args = parser.parse_args(argv)

    try:
        if args.command == "create-admin":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass(f"Password for {args.username}: ")
            account = admins.ensure_admin(args.username, password)
            print(f"{account.username} is an admin with {account.tokens} tokens.")
        elif args.command == "promote":
            account = admins.ensure_admin(args.username, None)
            print(f"{account.username} is now an admin.")
        else:
            if not 1 <= args.amount <= admins.MAX_REFILL:
                raise errors.BadRequest(f"amount must be from 1 to {admins.MAX_REFILL}.")
            if get_store().get_account(args.username) is None:
                raise errors.NotFound(f"There is no account named {args.username!r}.")
            print(f"{args.username} now has {get_store().refill(args.username, args.amount)} tokens.")
    except errors.AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
