"""What to classify: local files (folders walked recursively), URLs and bucket URIs, grouped into batches.

A batch holds at most 16 images (the API's limit) and keeps its JSON body under
the API's 10 MiB request limit (base64 adds a third). A file too large for any
request is reported as failed without being read or sent.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from imageclassify_client.errors import UsageProblem

BATCH_SIZE = 16
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # the API's default MAX_BODY_BYTES
BATCH_BODY = 7 * 1024 * 1024  # base64 characters per request, leaving room for the rest of the body
REMOTE = ("http://", "https://", "gs://", "s3://")


@dataclass(frozen=True)
class Source:
    """One image to classify: a local file, a URL the server fetches, or an object in the caller's space."""

    name: str  # as shown to the user
    kind: str  # file | url | uri
    value: str
    size: int = 0

    def body_size(self) -> int:
        return (self.size + 2) // 3 * 4 if self.kind == "file" else len(self.value) + 16


def hidden(name: str) -> bool:
    return name.startswith(".")


def walk(folder: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Regular files below `folder`, sorted; hidden files and folders and the `exclude` folders are left out."""
    skip = {p.resolve() for p in exclude}
    found: list[Path] = []
    for top, dirs, files in os.walk(folder):
        here = Path(top)
        dirs[:] = sorted(d for d in dirs if not hidden(d) and (here / d).resolve() not in skip)
        found.extend(here / f for f in sorted(files) if not hidden(f) and (here / f).is_file())
    return found


def file_source(path: Path, name: str | None = None) -> Source:
    return Source(name or str(path), "file", str(path), path.stat().st_size)


def parse_sources(arguments: Iterable[str]) -> list[Source]:
    """Each argument as sources: a URL or bucket URI as is, a file, or every file of a folder."""
    sources: list[Source] = []
    for argument in arguments:
        if argument.startswith(REMOTE):
            sources.append(Source(argument, "uri" if argument.startswith(("gs://", "s3://")) else "url", argument))
            continue
        path = Path(argument)
        if path.is_dir():
            sources.extend(file_source(p) for p in walk(path))
        elif path.is_file():
            sources.append(file_source(path, argument))
        else:
            raise UsageProblem(f"No such file or folder: {argument} (URLs must start with http:// or https://).")
    if not sources:
        raise UsageProblem("Nothing to classify: the folders given hold no files.")
    return sources


def too_large(source: Source) -> bool:
    return source.kind == "file" and source.size > MAX_IMAGE_BYTES


def payload(source: Source) -> dict[str, str]:
    """The JSON item for one source (reads and base64-encodes a local file)."""
    if source.kind == "file":
        return {"image": base64.b64encode(Path(source.value).read_bytes()).decode("ascii")}
    return {source.kind: source.value}


def batches(sources: Iterable[Source]) -> Iterator[list[Source]]:
    """Up to `BATCH_SIZE` sources per batch, their bodies together under `BATCH_BODY` (one large file alone)."""
    batch: list[Source] = []
    size = 0
    for source in sources:
        if batch and (len(batch) == BATCH_SIZE or size + source.body_size() > BATCH_BODY):
            yield batch
            batch, size = [], 0
        batch.append(source)
        size += source.body_size()
    if batch:
        yield batch
