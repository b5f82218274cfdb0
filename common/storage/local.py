"""The embedded object store: a folder on disk standing in for a bucket.

Writes and copies go to a temporary file in `<root>/.tmp/` (outside every
space, on the same file system) and are renamed into place, so a reader never
sees half a file and a process killed mid-write leaves nothing in anyone's
folders; what such a kill leaves in `.tmp/` is removed when a later process
opens the bucket, once it is `STALE_SECONDS` old.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from common import errors
from common.localfiles import place_atomic, write_atomic
from common.storage.port import MAX_NAME_BYTES, PAGE, Object, check_key, missing, too_large

TMP = ".tmp"
STALE_SECONDS = 3600  # no write takes this long: an older temporary file is a killed process's


def _remove_stale(folder: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    for entry in os.scandir(folder):
        with contextlib.suppress(FileNotFoundError):  # another process may be removing it too
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)


@contextlib.contextmanager
def _placing(key: str) -> Iterator[None]:
    """A key whose folder is a file, or which names a folder, cannot be written on a file system (a bucket
    would hold both): a 409 that says so, not an OSError."""
    try:
        yield
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise errors.Conflict(f"{key.rsplit('/', 1)[-1][:100]!r} cannot be written: a file and a folder of the same "
                              "name would meet there. Rename one of them.", code="path_conflict") from None


class LocalStorage:
    # `gs` so that gs://<bucket>/<key> URIs name objects in the folder, as they would on GCS
    scheme = "gs"

    def __init__(self, root: Path, bucket: str) -> None:
        self.root = Path(root).resolve()
        self.tmp = self.root / TMP
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket
        _remove_stale(self.tmp)

    def path(self, key: str) -> Path:
        if any(len(part.encode()) > MAX_NAME_BYTES for part in key.split("/")):
            raise errors.BadRequest(f"{key[:100]!r} has a name longer than {MAX_NAME_BYTES} bytes.", code="invalid_key")
        path = (self.root / check_key(key)).resolve()
        if path != self.root and self.root not in path.parents:
            raise errors.BadRequest(f"{key[:100]!r} escapes the bucket.", code="invalid_key")
        return path

    def list(self, prefix: str, page_token: str | None = None,
             page_size: int = PAGE) -> tuple[list[Object], str | None]:
        # walk only the folder the prefix names (a prefix may end inside a file or folder name)
        folder = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not folder.resolve().is_relative_to(self.root) or not folder.is_dir():
            return [], None
        found = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue
                key = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                if key.startswith(prefix) and (page_token is None or key > page_token):
                    found.append(key)
        found.sort()
        page = [Object(k, (self.root / k).stat().st_size) for k in found[:page_size]]
        return page, (page[-1].key if len(found) > page_size else None)

    def stat(self, key: str) -> Object | None:
        path = self.path(key)
        return Object(key, path.stat().st_size) if path.is_file() else None

    def read(self, key: str, max_bytes: int) -> bytes:
        path = self.path(key)
        try:
            if path.stat().st_size > max_bytes:
                raise too_large(key, max_bytes)
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise missing(key) from None

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with _placing(key):
            write_atomic(self.path(key), data, prefix="w-", tmp_dir=self.tmp)

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise missing(key) from None

    def copy(self, source: str, destination: str) -> None:
        src, dst = self.path(source), self.path(destination)
        if not src.is_file():
            raise missing(source)
        def fill(tmp: str) -> None:
            shutil.copyfile(src, tmp)
            shutil.copymode(src, tmp)  # the output keeps the source's permissions

        with _placing(destination):
            place_atomic(dst, fill, prefix="c-", tmp_dir=self.tmp)
