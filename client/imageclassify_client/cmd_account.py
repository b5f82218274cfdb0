"""register, login, balance: an account and its saved API key."""

from __future__ import annotations

import sys

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
    api = state.settings().api
    password = read_password(password_stdin, confirm=True)
    reply = state.client().register(username, password)
    path = config.save_account(api, reply["username"], reply["api_key"])
    out = state.output
    if out.json_mode:
        out.emit_json({"username": reply["username"], "tokens": reply.get("tokens"), "api": api,
                       "config": str(path)})
    else:
        out.say(f"Registered {reply['username']} on {api} with {reply.get('tokens')} tokens.")
        out.say(f"API key saved in {path}.")


@click.command()
@click.argument("username")
@password_stdin
@json_option
@pass_state
def login(state: State, username: str, password_stdin: bool) -> None:
    """Get a fresh API key with your password (the previous key stops working) and save it."""
    api = state.settings().api
    password = read_password(password_stdin, confirm=False)
    reply = state.client().new_key(username, password)
    path = config.save_account(api, reply.get("username", username), reply["api_key"])
    if state.output.json_mode:
        state.output.emit_json({"username": reply.get("username", username), "api": api, "config": str(path)})
    else:
        state.output.say(f"Logged in as {reply.get('username', username)} on {api}; new API key saved in {path}.")


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
