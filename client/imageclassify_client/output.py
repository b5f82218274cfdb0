"""Everything the user sees: tables and progress bars for people, JSON for scripts, errors on stderr.

Progress bars appear only when stdout is a terminal and JSON was not asked for,
so piped output and `--json` stay clean. File names and server text are shown
literally (never parsed as rich markup).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


class Output:
    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.emitted = False  # whether a JSON document was printed already (then an error adds none)
        self.console = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and not self.json_mode

    def emit_json(self, data: Any) -> None:
        self.emitted = True
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def say(self, text: str, style: str | None = None) -> None:
        """One line for people on stdout (suppressed in JSON mode)."""
        if not self.json_mode:
            self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def warn(self, text: str) -> None:
        self.err.print(Text(text, style="yellow"), soft_wrap=True)

    def error(self, text: str) -> None:
        self.err.print(Text("error: ", style="bold red") + Text(text), soft_wrap=True)

    def show(self, table: Table, heading: str | None = None) -> None:
        """A table, after a heading line that is never wrapped (long file names stay whole)."""
        if not self.json_mode:
            if heading is not None:
                self.console.print(Text(heading, style="bold"), soft_wrap=True)
            self.console.print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None, enabled: bool = True) -> Iterator[Bar]:
        """A progress bar when interactive; a silent stand-in otherwise."""
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                            TimeRemainingColumn(), console=self.console, transient=True,
                            disable=not (enabled and self.interactive))
        with progress:
            yield Bar(progress, progress.add_task(escape(description), total=total))


class Bar:
    """One task of a rich progress display."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def update(self, *, total: float | None = None, completed: float | None = None,
               description: str | None = None) -> None:
        self._progress.update(self._task, total=total, completed=completed,
                              description=None if description is None else escape(description))

    def advance(self, steps: float = 1) -> None:
        self._progress.advance(self._task, steps)


def predictions_table(predictions: list[dict[str, Any]]) -> Table:
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("label")
    table.add_column("score", justify="right")
    for rank, item in enumerate(predictions, 1):
        table.add_row(str(rank), Text(str(item.get("label"))), f"{100 * float(item.get('score', 0)):.1f}%")
    return table


def counts_table(title: str, rows: Mapping[str, Any], total: str | None = None) -> Table:
    """Two columns, name and count; `total` adds a closing row."""
    table = Table(title=escape(title), title_justify="left")
    table.add_column("")
    table.add_column("images", justify="right")
    for name, count in rows.items():
        table.add_row(Text(str(name)), str(count))
    if total is not None:
        table.add_section()
        table.add_row("total", total)
    return table


def failures_table(title: str, failures: Iterable[tuple[str, str]]) -> Table:
    """Files that failed and the server's reason for each (as text, never markup)."""
    table = Table(title=escape(title), title_justify="left")
    table.add_column("file")
    table.add_column("why")
    for path, message in failures:
        table.add_row(Text(path), Text(message))
    return table


def job_table(job: Mapping[str, Any]) -> Table:
    rows: dict[str, Any] = dict(job.get("matched") or {})
    rows["unmatched"] = job.get("unmatched", 0)
    rows["failed"] = job.get("failed", 0)
    if job.get("not_written"):  # classified, but a file of yours was where the output goes: left as it was
        rows["not written"] = job["not_written"]
    return counts_table(f"job {job.get('id', '')}: {job.get('status', '?')}", rows,
                        f"{job.get('processed', 0)}/{job.get('total', 0)}")


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def model_table(model: Mapping[str, Any]) -> Table:
    """A model's status line and, once it is ready, its per-class metrics on the test split."""
    metrics = model.get("metrics") or {}
    title = f"model {model.get('name')}: {model.get('status')}"
    if "accuracy" in metrics:
        title += f"  accuracy {_number(metrics.get('accuracy'))}  macro F1 {_number(metrics.get('macro_f1'))}"
    if model.get("error"):
        title += f"  ({model['error']})"
    table = Table(title=escape(title), title_justify="left")
    for column in ("class", "precision", "recall", "f1", "support", "roc_auc"):
        table.add_column(column, justify="left" if column == "class" else "right")
    per_class = metrics.get("per_class") or {}
    labels = list(per_class) or [str(c) for c in model.get("classes") or []]
    for label in labels:
        row = per_class.get(label) or {}
        support = row.get("support")
        table.add_row(Text(label), *(_number(row.get(k)) for k in ("precision", "recall", "f1")),
                      "-" if support is None else str(support), _number(row.get("roc_auc")))
    return table


def models_table(models: list[dict[str, Any]]) -> Table:
    table = Table(title="models", title_justify="left")
    for column in ("name", "status", "classes", "accuracy", "backbone"):
        table.add_column(column)
    for model in models:
        classes = model.get("classes")
        count = len(classes) if isinstance(classes, list) else classes
        accuracy = (model.get("metrics") or {}).get("accuracy", model.get("accuracy"))
        kind = ("built-in, default" if model.get("default") else "built-in") if model.get("builtin") else None
        table.add_row(Text(str(model.get("name"))), str(model.get("status", "ready")),
                      "-" if count is None else str(count), _number(accuracy),
                      Text(kind or str(model.get("backbone") or "-")))
    return table
