"""The embedded object store: a folder on disk standing in for a bucket.

Writes and copies go to a temporary file in `<root>/.tmp/` (outside every
space, on the same file system) and are renamed into place, so a reader never
sees half a file and a process killed mid-write leaves nothing in anyone's
folders; what such a kill leaves in `.tmp/` is removed when a later process
opens the bucket, once it is `STALE_SECONDS` old.

Symbolic links in the folder are never followed, by any operation: a link
could lead from one space into another's (or into the models), and the checks
that keep a key inside its owner's space are made on key names. A key with a
link on its way is not there (404) to read, list, stat, copy or delete, and
cannot be written (409); regular files dropped into a space on disk work as
uploads do. A file that vanishes while a folder is listed is simply not listed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stats
import time
from collections.abc import Iterator
from pathlib import Path

from common.adapters.localfiles import place_atomic, write_atomic
from common.adapters.storage.port import MAX_NAME_BYTES, PAGE, Object, check_key, missing, too_large
from common.core import errors

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

    def path(self, key: str, *, writing: bool = False) -> Path:
        """The file of `key`; a link on its way makes it missing (a 404), or a 409 to write."""
        if any(len(part.encode()) > MAX_NAME_BYTES for part in key.split("/")):
            raise errors.BadRequest(f"{key[:100]!r} has a name longer than {MAX_NAME_BYTES} bytes.", code="invalid_key")
        path = self.root / check_key(key)
        if not _unlinked(self.root, key):
            if writing:
                raise errors.Conflict(f"{key[:100]!r} cannot be written: a symbolic link on the server's disk is in "
                                      "the way (links in the bucket folder are not followed). Remove it.",
                                      code="path_conflict")
            raise missing(key)
        return path

    def list(self, prefix: str, page_token: str | None = None,
             page_size: int = PAGE) -> tuple[list[Object], str | None]:
        # walk only the folder the prefix names (a prefix may end inside a file or folder name)
        folder = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not folder.is_dir():
            return [], None
        found = sorted(((key, entry) for key, entry in files(self.root, folder)
                        if key.startswith(prefix) and (page_token is None or key > page_token)), key=lambda f: f[0])
        page: list[Object] = []
        for key, entry in found:
            if len(page) == page_size:
                return page, page[-1].key
            with contextlib.suppress(FileNotFoundError):  # deleted since it was listed: not listed
                page.append(Object(key, entry.stat(follow_symlinks=False).st_size))
        return page, None

    def stat(self, key: str) -> Object | None:
        try:
            found = os.stat(self.path(key), follow_symlinks=False)
        except (errors.NotFound, FileNotFoundError, NotADirectoryError):
            return None
        return Object(key, found.st_size) if stats.S_ISREG(found.st_mode) else None

    def read(self, key: str, max_bytes: int) -> bytes:
        try:  # O_NOFOLLOW: a link put in place since the check is not followed either
            fd = os.open(self.path(key), os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise missing(key) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise missing(key) from None
            raise
        with os.fdopen(fd, "rb") as f:
            found = os.fstat(f.fileno())
            if not stats.S_ISREG(found.st_mode):
                raise missing(key)
            if found.st_size > max_bytes:
                raise too_large(key, max_bytes)
            return f.read()

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with _placing(key):
            write_atomic(self.path(key, writing=True), data, prefix="w-", tmp_dir=self.tmp)

    def delete(self, key: str) -> None:
        path = self.path(key)
        if self.stat(key) is None:
            raise missing(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise missing(key) from None

    def copy(self, source: str, destination: str) -> None:
        src, dst = self.path(source), self.path(destination, writing=True)
        if self.stat(source) is None:
            raise missing(source)

        def fill(tmp: str) -> None:
            try:
                shutil.copyfile(src, tmp, follow_symlinks=False)
                shutil.copymode(src, tmp, follow_symlinks=False)  # the output keeps the source's permissions
            except FileNotFoundError:  # deleted since the check
                raise missing(source) from None

        with _placing(destination):
            place_atomic(dst, fill, prefix="c-", tmp_dir=self.tmp)


def _unlinked(root: Path, key: str) -> bool:
    """Whether no part of `key` below the resolved bucket `root` is a symbolic link (a part that does not exist
    links nowhere). One lstat per part below the root: what os.path.realpath checks there, without the root's own
    parts, on every read, stat and copy."""
    current = str(root)
    for part in key.split("/"):
        current = f"{current}/{part}"
        try:
            if stats.S_ISLNK(os.lstat(current).st_mode):
                return False
        except (FileNotFoundError, NotADirectoryError):
            return True
    return True


def files(root: Path, folder: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every regular file under `folder`, as its key (relative to `root`) and its entry: names starting with '.'
    are hidden, links are not followed nor listed, and a folder that vanishes while walked is skipped. `root` is
    resolved; a `folder` with a link on its way holds nothing."""
    folders = [str(folder)] if os.path.realpath(folder) == str(folder) else []
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                found = list(entries)
        except OSError:  # gone or unreadable since it was listed, as os.walk would skip it
            continue
        for entry in found:
            if entry.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield os.path.relpath(entry.path, root).replace(os.sep, "/"), entry
