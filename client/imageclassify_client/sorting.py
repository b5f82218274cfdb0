"""`imageclassify sort`: seed 004 on a local folder, with the server's WordNet class scores.

Images of DIR (recursively) go through `POST /classify` batches carrying
`classes`; the server answers each image's `class_scores` and `class` (its best
class at or above `min_score`, else null). Each image is then copied (or moved)
to `OUT/<class>/<relative path>` or `OUT/unmatched/...`.

Resumable: `OUT/.imageclassify-sort.json` maps each source's relative path to its
size, mtime and outcome, saved after every batch; a rerun skips what was sorted
and is unchanged, so it classifies (and spends) nothing twice. Failed files are
tried again (a failed image costs nothing). OUT's class folders
are never read as input, even when OUT is DIR itself.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageclassify_client import inputs
from imageclassify_client.api import Client
from imageclassify_client.classifying import Outcome, classify_all
from imageclassify_client.errors import ClientError, UsageProblem
from imageclassify_client.output import Bar

STATE_NAME = ".imageclassify-sort.json"
UNMATCHED = "unmatched"


def parse_classes(text: str) -> list[str]:
    """The comma-separated classes, each usable as a folder name."""
    classes = [c.strip() for c in text.split(",") if c.strip()]
    if not classes:
        raise UsageProblem("--classes needs at least one class, e.g. --classes dog,cat,food")
    for name in classes:
        if name in (".", "..", UNMATCHED) or any(ch in name for ch in "/\\\x00") or hidden(name):
            raise UsageProblem(f"{name!r} cannot be a class folder: no '/', '\\', leading '.', or '{UNMATCHED}'.")
    if len(set(classes)) != len(classes):
        raise UsageProblem("--classes lists a class twice.")
    return classes


def hidden(name: str) -> bool:
    return inputs.hidden(name)


@dataclass
class State:
    """What earlier runs did, per source folder: {relative path: {size, mtime_ns, outcome, destination}}."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, out: Path) -> State:
        path = out / STATE_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError):
            raise UsageProblem(f"{path} is damaged; delete it to sort everything again.") from None
        if not isinstance(data, dict) or not isinstance(data.get("sources", {}), dict):
            raise UsageProblem(f"{path} is not a sort state file; delete it to sort everything again.")
        data.setdefault("version", 1)
        data.setdefault("sources", {})
        return cls(path, data)

    def entries(self, root: Path) -> dict[str, Any]:
        return dict(self.data["sources"].setdefault(str(root.resolve()), {}))

    def record(self, root: Path, relative: str, entry: dict[str, Any]) -> None:
        self.data["sources"].setdefault(str(root.resolve()), {})[relative] = entry

    def destination_folders(self) -> set[str]:
        """Top folders of OUT that earlier runs wrote into (never input, even with other classes now)."""
        tops = set()
        for entries in self.data["sources"].values():
            for entry in entries.values():
                if entry.get("destination"):
                    tops.add(Path(entry["destination"]).parts[0])
        return tops

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".sort-state-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.data, fh, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class Summary:
    counts: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (relative path, message)
    tokens_remaining: int | None = None

    def json(self, classes: list[str]) -> dict[str, Any]:
        return {"sorted": {c: self.counts[c] for c in classes}, "unmatched": self.counts[UNMATCHED],
                "failed": [{"path": p, "message": m} for p, m in self.failures], "skipped": self.skipped,
                "tokens_remaining": self.tokens_remaining}


def choose(result: dict[str, Any], classes: list[str], min_score: float) -> str:
    """The folder for one image: the server's `class`, else the best of its `class_scores` at or above min_score."""
    if "class" in result:
        chosen = result["class"]
        return chosen if chosen in classes else UNMATCHED  # never a folder the user did not ask for
    scores = result.get("class_scores")
    if not isinstance(scores, dict):
        raise ClientError("The server did not return class scores for the images: it does not support `classes` "
                          "in POST /classify yet. Update the server, or sort in the bucket with "
                          "`imageclassify upload` and `imageclassify job`.")
    best = max(classes, key=lambda c: float(scores.get(c) or 0.0))
    return best if float(scores.get(best) or 0.0) >= min_score else UNMATCHED


def free_path(path: Path) -> Path:
    """`path`, or `name-1.ext`, `name-2.ext`, ... when something else is already there."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def place(source: Path, destination: Path, move: bool) -> Path:
    """Copy (through a temporary name, so an interrupted copy leaves no half file) or move one image."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    target = free_path(destination)
    if move:
        shutil.move(str(source), target)
        return target
    partial = target.with_name(f".{target.name}.part")
    try:
        shutil.copy2(source, partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


@dataclass(frozen=True)
class Plan:
    root: Path
    out: Path
    classes: list[str]
    min_score: float
    move: bool
    model: str | None = None

    def options(self) -> dict[str, Any]:
        return {"classes": self.classes, "min_score": self.min_score, "model": self.model, "top_k": 1}


def pending(plan: Plan, state: State, summary: Summary) -> list[tuple[str, inputs.Source, os.stat_result]]:
    """The images of DIR still to sort: not in OUT's class folders, not recorded unchanged in the state."""
    exclude = [plan.out / name for name in {*plan.classes, UNMATCHED, *state.destination_folders()}]
    if plan.out.resolve() != plan.root.resolve() and (plan.root / STATE_NAME).exists():
        exclude += [plan.root / name for name in State.load(plan.root).destination_folders()]  # sorted in place before
    done = state.entries(plan.root)
    todo = []
    for path in inputs.walk(plan.root, exclude):
        relative = path.relative_to(plan.root).as_posix()
        stat = path.stat()
        entry = done.get(relative)
        if (entry and entry.get("outcome") != "failed" and entry.get("size") == stat.st_size
                and entry.get("mtime_ns") == stat.st_mtime_ns):
            summary.skipped += 1
            continue
        todo.append((relative, inputs.file_source(path, relative), stat))
    return todo


def sort_folder(client: Client, plan: Plan, progress: Bar | None = None) -> tuple[Summary, ClientError | None]:
    """Sort what is pending; the summary so far and the error that stopped it, if one did."""
    if not plan.root.is_dir():
        raise UsageProblem(f"No such folder: {plan.root}")
    state, summary = State.load(plan.out), Summary()
    todo = pending(plan, state, summary)
    by_name = {source.name: (relative, stat) for relative, source, stat in todo}
    if progress is not None:
        progress.update(total=len(todo))

    def settle(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            relative, stat = by_name[outcome.source.name]
            entry: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            if outcome.error is not None:
                summary.failures.append((relative, str(outcome.error.get("message"))))
                entry.update(outcome="failed", message=outcome.error.get("message"))
            else:
                folder = choose(outcome.result or {}, plan.classes, plan.min_score)
                target = place(plan.root / relative, plan.out / folder / relative, plan.move)
                summary.counts[folder] += 1
                entry.update(outcome=folder, destination=target.relative_to(plan.out).as_posix())
            state.record(plan.root, relative, entry)
        state.save()
        if progress is not None:
            progress.advance(len(outcomes))

    try:
        run = classify_all(client, [source for _, source, _ in todo], plan.options(), settle)
        summary.tokens_remaining = run.tokens_remaining
    except ClientError as exc:
        return summary, exc
    return summary, None
