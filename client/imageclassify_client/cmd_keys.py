"""keys, password, account: the account's named API keys, its password, and leaving."""

from __future__ import annotations

import datetime
import sys
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from imageclassify_client.cmd_account import password_stdin, read_password
from imageclassify_client.context import State, json_option, pass_state
from imageclassify_client.errors import UsageProblem


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "never"
    return datetime.datetime.fromtimestamp(value, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def keys_table(keys: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("id", "name", "prefix", "scope", "created", "last used"):
        table.add_column(column, no_wrap=True)
    for key in keys:
        table.add_row(Text(str(key.get("id"))), Text(str(key.get("name"))), Text(f"{key.get('prefix')}..."),
                      Text(str(key.get("scope"))), _when(key.get("created")), _when(key.get("last_used")))
    return table


@click.group()
def keys() -> None:
    """Your named API keys: list, create (the key is shown once), revoke."""


@keys.command("list")
@json_option
@pass_state
def list_keys(state: State) -> None:
    """List your API keys (never their secrets)."""
    found = state.client().keys()
    if state.output.json_mode:
        state.output.emit_json({"keys": found})
    else:
        state.output.show(keys_table(found))


@keys.command()
@click.argument("name")
@click.option("--scope", type=click.Choice(["all", "classify"]), default="all", show_default=True,
              help="classify: may only classify, read the balance and read its jobs.")
@json_option
@pass_state
def create(state: State, name: str, scope: str) -> None:
    """Make a named API key; it is printed once, keep it safe."""
    made = state.client().create_key(name, scope)
    if state.output.json_mode:
        state.output.emit_json(made)
    else:
        state.output.say(f"Key {made['name']!r} ({made['scope']}, id {made['id']}); shown only now:")
        click.echo(made["key"])


@keys.command()
@click.argument("key_id")
@json_option
@pass_state
def revoke(state: State, key_id: str) -> None:
    """Revoke one key at once (find its id with `keys list`); your other keys keep working."""
    state.client().revoke_key(key_id)
    if state.output.json_mode:
        state.output.emit_json({"revoked": key_id})
    else:
        state.output.say(f"Revoked key {key_id}.")


@click.command()
@click.option("--revoke-keys", is_flag=True, help="Also revoke every API key but the one this command uses.")
@password_stdin
@json_option
@pass_state
def password(state: State, revoke_keys: bool, password_stdin: bool) -> None:
    """Change your password (stdin: the current one on the first line, the new one on the second)."""
    if password_stdin:
        old, new = sys.stdin.readline().rstrip("\r\n"), sys.stdin.readline().rstrip("\r\n")
        if not old or not new:
            raise UsageProblem("Give the current password on the first line of stdin and the new one on the second.")
    else:
        old = click.prompt("Current password", hide_input=True)
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    state.client().change_password(old, new, revoke_keys)
    if state.output.json_mode:
        state.output.emit_json({"changed": True, "keys_revoked": revoke_keys})
    else:
        state.output.say("Password changed." + (" Your other keys were revoked." if revoke_keys else ""))


@click.group()
def account() -> None:
    """Your account: delete it."""


@account.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed with --password-stdin).")
@password_stdin
@json_option
@pass_state
def delete(state: State, yes: bool, password_stdin: bool) -> None:
    """Delete your account: its keys stop at once; its files, jobs, models and tokens are gone for good."""
    if not yes:
        if password_stdin:
            raise UsageProblem("Deleting an account cannot be undone: add --yes to confirm with --password-stdin.")
        click.confirm("Delete your account, its files, jobs, models and tokens for good?", abort=True)
    reply = state.client().delete_account(read_password(password_stdin, confirm=False))
    if state.output.json_mode:
        state.output.emit_json(reply)
    else:
        state.output.say(f"Account {reply.get('username')} deleted: its keys stopped, its data is being purged.")
