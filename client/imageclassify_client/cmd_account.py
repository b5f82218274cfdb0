"""register, login, balance: an account and its saved API key."""

from __future__ import annotations

import sys
from typing import Any

import click

from imageclassify_client import config
from imageclassify_client.context import State, json_option, pass_state
from imageclassify_client.errors import UsageProblem


def read_password(from_stdin: bool, confirm: bool) -> str:
    """The password from stdin (one line, for scripts) or a hidden prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    if not password:
        raise UsageProblem("The password is empty.")
    return password


password_stdin = click.option("--password-stdin", is_flag=True,
                              help="Read the password from the first line of stdin instead of a prompt.")


@click.command()
@click.argument("username")
@password_stdin
@json_option
@pass_state
def register(state: State, username: str, password_stdin: bool) -> None:
    """Create an account; its API key is saved for the next commands."""
    password = read_password(password_stdin, confirm=True)
    reply = state.client().register(username, password)
    _save(state, reply["username"], reply["api_key"], {"tokens": reply.get("tokens")},
          f"Registered {reply['username']} on {{api}} with {reply.get('tokens')} tokens.\nAPI key saved in {{path}}.")


@click.command()
@click.argument("username")
@password_stdin
@json_option
@pass_state
def login(state: State, username: str, password_stdin: bool) -> None:
    """Get a fresh API key with your password (the previous key stops working) and save it."""
    password = read_password(password_stdin, confirm=False)
    reply = state.client().new_key(username, password)
    name = reply.get("username", username)
    _save(state, name, reply["api_key"], {}, f"Logged in as {name} on {{api}}; new API key saved in {{path}}.")


def _save(state: State, username: str, key: str, extra: dict[str, Any], said: str) -> None:
    """Keep the account's key for the next commands, and say so (`said` names {api} and {path})."""
    api = state.settings().api
    path = config.save_account(api, username, key)
    if state.output.json_mode:
        state.output.emit_json({"username": username, **extra, "api": api, "config": str(path)})
    else:
        for line in said.format(api=api, path=path).splitlines():
            state.output.say(line)


@click.command()
@json_option
@pass_state
def balance(state: State) -> None:
    """Show your token balance (free)."""
    reply = state.client().balance()
    if state.output.json_mode:
        state.output.emit_json(reply)
    else:
        state.output.say(f"{reply.get('username')}: {reply.get('tokens')} tokens")
