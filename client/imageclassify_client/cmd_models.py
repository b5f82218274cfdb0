"""train and models: custom models (a small head on the shared backbone) trained from your images."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from imageclassify_client import inputs, output
from imageclassify_client.cmd_bucket import upload_to
from imageclassify_client.context import State, interval_option, json_option, pass_state, webhook_option
from imageclassify_client.errors import UsageProblem
from imageclassify_client.watching import watch_model

NAME_RULE = re.compile(r"[a-z0-9][a-z0-9_-]{1,39}")


def check_dataset(folder: Path) -> list[str]:
    """The class folders of a local training set (at least two, images anywhere below each)."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not inputs.hidden(p.name))
    if len(classes) < 2:
        raise UsageProblem(f"{folder} needs one subfolder per class (at least 2), each holding that class's images.")
    return classes


@click.command()
@click.argument("source", metavar="DIR_OR_SOURCE")
@click.option("--name", "-n", required=True, help="The model's name: a-z, 0-9, '_' and '-', 2 to 40 characters.")
@click.option("--augment", type=click.IntRange(0, 50), default=None,
              help="Augmented copies per training image (server default when omitted).")
@click.option("--backbone", "-b", default=None, metavar="BUILTIN",
              help="The built-in model whose features it learns from (e.g. efficientnet_lite2; server default "
                   "efficientnet_lite0). `imageclassify models` lists the built-ins.")
@click.option("--watch", "-w", is_flag=True, help="Follow training to its end, then show the metrics.")
@interval_option
@webhook_option
@json_option
@pass_state
def train(state: State, source: str, name: str, augment: int | None, backbone: str | None, watch: bool,
          interval: float, webhook: str | None) -> int:
    """Train a custom model from a local folder of class subfolders, or from a folder of your space.

    A local folder is first uploaded to datasets/NAME/ in your space (files already there are skipped).
    One token per image, reserved up front.
    """
    if not NAME_RULE.fullmatch(name):
        raise UsageProblem(f"{name!r} is not a model name: 2 to 40 of a-z, 0-9, '_' and '-', starting with a "
                           "letter or digit.")
    out, client = state.output, state.client()
    report: dict[str, Any] = {}
    local = Path(source)
    if local.is_dir():
        check_dataset(local)
        remote = f"datasets/{name}/"
        report["upload"] = upload_to(state, local, remote, report_json=False).json(remote)
    else:
        remote = source
    body: dict[str, Any] = {"name": name, "source": remote}
    if augment is not None:
        body["augment"] = augment
    if backbone is not None:
        body["backbone"] = backbone
    if webhook is not None:
        body["webhook"] = webhook
    created = client.create_model(body)
    final = created
    if watch:
        try:
            final = watch_model(client, out, name, interval)
        except KeyboardInterrupt:
            out.warn(f"\nStopped watching; training of {name} goes on. Follow it: imageclassify models {name}")
            raise
    if out.json_mode:
        out.emit_json({**report, "model": final})
    elif watch:
        out.show(output.model_table(final))
    else:
        out.say(f"model {name} {created.get('status', 'queued')}: {created.get('images', '?')} images in "
                f"{len(created.get('classes') or [])} classes. Follow it: imageclassify models {name}")
    return 1 if final.get("status") == "failed" else 0


@click.command()
@click.argument("args", nargs=-1, metavar="[NAME | delete NAME]")
@click.option("--confusion", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Save the model's confusion matrix (test split) to this PNG file.")
@json_option
@pass_state
def models(state: State, args: tuple[str, ...], confusion: Path | None) -> None:
    """List your models and the built-ins; `models NAME` shows one; `models delete NAME` deletes one."""
    out, client = state.output, state.client()
    if args[:1] == ("delete",):
        if len(args) != 2:
            raise click.UsageError("Name the model to delete: imageclassify models delete NAME")
        client.delete_model(args[1])
        if out.json_mode:
            out.emit_json({"name": args[1], "deleted": True})
        else:
            out.say(f"model {args[1]} deleted.")
        return
    if len(args) > 1:
        raise click.UsageError("Give at most one model name.")
    if not args:
        if confusion is not None:
            raise click.UsageError("--confusion needs a model name: imageclassify models NAME --confusion FILE.png")
        listed = client.models()
        if out.json_mode:
            out.emit_json({"models": listed})
        else:
            out.show(output.models_table(listed))
        return
    model = client.model(args[0])
    if confusion is not None:
        confusion.write_bytes(client.confusion_png(args[0]))
    if out.json_mode:
        out.emit_json({**model, **({"confusion_png": str(confusion)} if confusion else {})})
    else:
        out.show(output.model_table(model))
        if confusion is not None:
            out.say(f"confusion matrix saved to {confusion}")
