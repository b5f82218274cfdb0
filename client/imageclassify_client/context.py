"""What every command shares: the resolved API and key, the client, the output mode, common options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from imageclassify_client import config
from imageclassify_client.api import Client
from imageclassify_client.output import Output

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    api_flag: str | None = None
    key_flag: str | None = None
    output: Output = field(default_factory=Output)
    _client: Client | None = None

    def settings(self) -> config.Settings:
        return config.resolve(self.api_flag, self.key_flag)

    def client(self) -> Client:
        if self._client is None:
            settings = self.settings()
            self._client = Client(settings.api, settings.key)
        return self._client


pass_state = click.make_pass_decorator(State, ensure=True)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).output.json_mode = True


def json_option(f: F) -> F:
    """`--json` on a command: machine-readable output on stdout (also accepted before the command)."""
    return click.option("--json", "json_mode", is_flag=True, expose_value=False, callback=_set_json,
                        is_eager=True, help="Print JSON for scripts instead of tables.")(f)


def interval_option(f: F) -> F:
    return click.option("--interval", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
                        help="Seconds between status polls with --watch.")(f)


def model_option(f: F) -> F:
    return click.option("--model", "-m", default=None,
                        help="A built-in model (efficientnet_lite0, the default; efficientnet_lite2, more accurate) "
                             "or one of your own: `imageclassify models` lists them.")(f)


def min_score_option(f: F) -> F:
    return click.option("--min-score", type=click.FloatRange(0, 1), default=None,
                        help="Smallest class score for an image to go to that class (server default 0.3).")(f)


def webhook_option(f: F) -> F:
    return click.option("--webhook", default=None, metavar="URL",
                        help="An https URL to POST a signed event to when it ends (see `imageclassify webhooks`).")(f)
