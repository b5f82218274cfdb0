"""The `imageclassify` command: global options, the sub-commands, and clean failure.

Exit codes: 0 success, 1 the server refused (its message on stderr) or some
images failed, 2 usage or configuration, 3 the API could not be reached,
130 interrupted. Never a traceback (set IMAGECLASSIFY_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from imageclassify_client import __version__
from imageclassify_client.cmd_account import balance, login, register
from imageclassify_client.cmd_bucket import job, jobs, upload
from imageclassify_client.cmd_images import classify, sort
from imageclassify_client.cmd_keys import account, keys, password
from imageclassify_client.cmd_models import models, train
from imageclassify_client.cmd_usage import usage, webhooks
from imageclassify_client.context import State
from imageclassify_client.errors import EXIT_INTERRUPTED, EXIT_REFUSED, ClientError
from imageclassify_client.output import Output


class Cli(click.Group):
    """A group that reports a `ClientError` with the state of the command that raised it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            state = ctx.find_object(State)
            report(state.output if state else Output(), exc)
            ctx.exit(exc.exit_code)


def report(out: Output, exc: ClientError) -> None:
    out.error(str(exc))
    if out.json_mode and not out.emitted:
        out.emit_json(exc.json())


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--api", envvar="IMAGECLASSIFY_API", default=None, metavar="URL",
              help="The API's URL [default: $IMAGECLASSIFY_API, else the saved one, else http://127.0.0.1:8080].")
@click.option("--key", envvar="IMAGECLASSIFY_KEY", default=None, metavar="KEY",
              help="API key [default: $IMAGECLASSIFY_KEY, else the one saved by register/login].")
@click.option("--json", "json_mode", is_flag=True, help="Print JSON for scripts instead of tables.")
@click.version_option(__version__, prog_name="imageclassify")
@click.pass_context
def cli(ctx: click.Context, api: str | None, key: str | None, json_mode: bool) -> None:
    """Classify images, sort folders and train custom models with the ImageClassify API."""
    ctx.obj = State(api, key, Output(json_mode))


for command in (register, login, balance, classify, sort, upload, job, jobs, train, models):
    cli.add_command(command)
for command in (keys, password, account, usage, webhooks):  # the account: keys, password, leaving, usage, webhooks
    cli.add_command(command)


def main() -> None:
    """The console entry point: run the command, turn every failure into a message and an exit code."""
    try:
        result = cli.main(prog_name="imageclassify", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("\nInterrupted.", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except ClientError as exc:  # raised outside a command (e.g. while resolving options)
        report(Output(), exc)
        code = exc.exit_code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the reader went away: stop quietly
        code = EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - the promise is: a message, never a traceback
        if os.environ.get("IMAGECLASSIFY_DEBUG"):
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}. Set IMAGECLASSIFY_DEBUG=1 for details.",
                   err=True)
        code = EXIT_REFUSED
    sys.exit(code)
