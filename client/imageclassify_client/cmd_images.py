"""classify and sort: local images (and URLs) through `POST /classify` batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from imageclassify_client import inputs, output
from imageclassify_client.classifying import Outcome, classify_all
from imageclassify_client.context import State, json_option, model_option, pass_state
from imageclassify_client.sorting import UNMATCHED, Plan, Summary, parse_classes, sort_folder


def error_text(error: dict[str, Any]) -> str:
    status = f" (HTTP {error['status']} {error.get('code', '')})" if error.get("status") else ""
    return f"{error.get('message')}{status}"


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("--top-k", "-k", type=click.IntRange(1, 20), default=5, show_default=True,
              help="How many labels to show per image.")
@model_option
@json_option
@pass_state
def classify(state: State, paths: tuple[str, ...], top_k: int, model: str | None) -> int:
    """Classify image files, folders (recursively), http(s) URLs or gs:// / s3:// objects of your space.

    One token per image classified; images that fail are not charged.
    """
    sources = inputs.parse_sources(paths)
    out, client = state.output, state.client()

    with out.progress("classifying", len(sources), enabled=len(sources) > inputs.BATCH_SIZE) as bar:
        def show(outcomes: list[Outcome]) -> None:
            for outcome in outcomes:
                if out.json_mode:
                    continue
                if outcome.error is not None:
                    out.error(f"{outcome.source.name}: {error_text(outcome.error)}")
                else:
                    predictions = (outcome.result or {}).get("predictions") or []
                    out.show(output.predictions_table(predictions), heading=outcome.source.name)
            bar.advance(len(outcomes))

        run = classify_all(client, sources, {"top_k": top_k, "model": model}, show)
    failed = sum(1 for o in run.outcomes if o.error is not None)
    if out.json_mode:
        out.emit_json({"model": run.model, "results": [o.json() for o in run.outcomes],
                       "tokens_remaining": run.tokens_remaining})
    else:
        left = "" if run.tokens_remaining is None else f"; {run.tokens_remaining} tokens left"
        out.say(f"{len(sources) - failed} of {len(sources)} images classified{left}.")
    if failed:
        out.warn(f"{failed} of {len(sources)} images failed (not charged).")
        return 1
    return 0


def summary_tables(summary: Summary, classes: list[str]) -> list[Table]:
    rows: dict[str, int] = {c: summary.counts[c] for c in classes}
    rows[UNMATCHED] = summary.counts[UNMATCHED]
    rows["failed"] = len(summary.failures)
    rows["already sorted (skipped)"] = summary.skipped
    tables = [output.counts_table("sorted", rows, str(sum(rows.values())))]
    if summary.failures:
        tables.append(output.failures_table("failed (not charged)", summary.failures))
    return tables


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--classes", "-c", required=True, help="Comma-separated classes, e.g. dog,cat,food (WordNet names).")
@model_option
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Smallest class score for an image to go to that class; below it, unmatched/.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the class folders go (default: FOLDER itself).")
@click.option("--move", is_flag=True, help="Move the images instead of copying them.")
@json_option
@pass_state
def sort(state: State, folder: Path, classes: str, model: str | None, min_score: float, out_dir: Path | None,
         move: bool) -> int:
    """Sort a local folder's images (recursively) into OUT/<class>/ and OUT/unmatched/.

    One token per image classified. Resumable: a rerun skips images already sorted.
    """
    class_list = parse_classes(classes)
    plan = Plan(folder, out_dir or folder, class_list, min_score, move, model)
    out = state.output
    with out.progress("sorting", None) as bar:
        summary, error = sort_folder(state.client(), plan, bar)
    if out.json_mode:
        out.emit_json({**summary.json(class_list), "out": str(plan.out),
                       **({"error": error.json()["error"]} if error else {})})
    else:
        for table in summary_tables(summary, class_list):
            out.show(table)
        if summary.tokens_remaining is not None:
            out.say(f"{summary.tokens_remaining} tokens left.")
    if error is not None:
        raise error
    return 0
