"""upload, job and jobs: files in your space and sort jobs that run on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from imageclassify_client import output
from imageclassify_client.context import (
    State,
    interval_option,
    json_option,
    min_score_option,
    model_option,
    pass_state,
    webhook_option,
)
from imageclassify_client.output import Output
from imageclassify_client.sorting import parse_classes
from imageclassify_client.uploading import Upload, normalise_prefix, upload_folder
from imageclassify_client.watching import watch_job


def upload_report(out: Output, result: Upload, prefix: str) -> None:
    if out.json_mode:
        out.emit_json(result.json(prefix))
        return
    out.say(f"{len(result.uploaded)} uploaded ({result.bytes_sent} bytes), {len(result.skipped)} already there, "
            f"{len(result.failures)} failed, under {prefix or '/'}")
    if result.failures:
        out.show(output.failures_table("failed", result.failures))


def upload_to(state: State, folder: Path, prefix: str, report_json: bool = True) -> Upload:
    """Upload and report (in JSON mode only when `report_json`); a refusal that stopped it is raised after."""
    out = state.output
    with out.progress(f"uploading to {prefix or '/'}", None) as bar:
        result, error = upload_folder(state.client(), folder, prefix, bar)
    if not out.json_mode or (report_json and error is None):
        upload_report(out, result, prefix)
    if error is not None:
        raise error
    return result


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "prefix", default=None, help="Folder in your space (default: the local folder's name).")
@json_option
@pass_state
def upload(state: State, folder: Path, prefix: str | None) -> int:
    """Upload a local folder into your space (free); files already there with the same size are skipped."""
    upload_to(state, folder, normalise_prefix(folder.resolve().name if prefix is None else prefix))
    return 0


def show_job(out: Output, job: dict[str, Any]) -> None:
    if out.json_mode:
        out.emit_json(job)
    else:
        out.show(output.job_table(job))
        if isinstance(job.get("ended"), int | float) and isinstance(job.get("created"), int | float):
            out.say(f"It ran {max(0.0, job['ended'] - job['created']):.1f} s.")


@click.command()
@click.argument("source")
@click.option("--classes", "-c", default=None,
              help="Comma-separated classes, e.g. dog,cat,food (default with a custom --model: all its labels).")
@model_option
@min_score_option
@click.option("--watch", "-w", is_flag=True, help="Follow the job to its end, then show the counts.")
@interval_option
@webhook_option
@json_option
@pass_state
def job(state: State, source: str, classes: str, model: str | None, min_score: float | None, watch: bool,
        interval: float, webhook: str | None) -> int:
    """Sort a folder of your space on the server (one token per image, reserved up front).

    Outputs land in your space at <class>/<path> and unmatched/<path>, where <path> is the image's path in
    your space (all/a.jpg goes to cat/all/a.jpg). A different file already there is never replaced: that
    image counts as "not written" (still charged: it was classified).
    """
    if classes is None and model is None:
        raise click.UsageError("Name the classes (--classes dog,cat), or a custom --model to use all its labels.")
    body: dict[str, Any] = {"source": source}
    body.update({k: v for k, v in (("classes", classes and parse_classes(classes)), ("model", model),
                                   ("min_score", min_score), ("webhook", webhook)) if v is not None})
    client, out = state.client(), state.output
    created = client.create_job(body)
    if not watch:
        if out.json_mode:
            out.emit_json(created)
        else:
            out.say(f"job {created['id']} {created.get('status')}: {created.get('total')} images. "
                    f"Follow it: imageclassify jobs show {created['id']} --watch")
        return 0
    try:
        final = watch_job(client, out, created, interval)
    except KeyboardInterrupt:
        out.warn(f"\nStopped watching; job {created['id']} goes on. Cancel it with: "
                 f"imageclassify jobs cancel {created['id']}")
        raise
    show_job(out, final)
    return 0 if final.get("status") == "done" else 1


@click.group()
def jobs() -> None:
    """Follow or cancel sort jobs."""


@jobs.command("show")
@click.argument("job_id")
@click.option("--watch", "-w", is_flag=True, help="Follow the job to its end.")
@interval_option
@json_option
@pass_state
def jobs_show(state: State, job_id: str, watch: bool, interval: float) -> None:
    """Show a job's status and counts."""
    current = state.client().job(job_id)
    show_job(state.output, watch_job(state.client(), state.output, current, interval) if watch else current)


@jobs.command("cancel")
@click.argument("job_id")
@json_option
@pass_state
def jobs_cancel(state: State, job_id: str) -> None:
    """Cancel a job; the tokens of images not yet sorted are refunded."""
    reply = state.client().cancel_job(job_id)
    if state.output.json_mode:
        state.output.emit_json(reply or {"id": job_id, "status": "cancelled"})
    else:
        state.output.say(f"job {job_id} {reply.get('status', 'cancelled')}.")
        if reply.get("matched") is not None:
            show_job(state.output, reply)
