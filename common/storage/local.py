"""The embedded object store: a folder on disk standing in for a bucket."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from common import errors
from common.storage.port import PAGE, check_key, missing, too_large


class LocalStorage:
    # `gs` so that gs://<bucket>/<key> URIs name objects in the folder, as they would on GCS
    scheme = "gs"

    def __init__(self, root: Path, bucket: str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if path != self.root and self.root not in path.parents:
            raise errors.BadRequest(f"{key[:100]!r} escapes the bucket.", code="invalid_key")
        return path

    def list(self, prefix: str, page_token: str | None = None, page_size: int = PAGE) -> tuple[list[str], str | None]:
        keys = sorted(
            str(p.relative_to(self.root)) for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".") and str(p.relative_to(self.root)).startswith(prefix)
        )
        if page_token:
            keys = [k for k in keys if k > page_token]
        page = keys[:page_size]
        return page, (page[-1] if len(keys) > page_size else None)

    def read(self, key: str, max_bytes: int) -> bytes:
        path = self.path(key)
        try:
            if path.stat().st_size > max_bytes:
                raise too_large(key, max_bytes)
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise missing(key) from None

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def copy(self, source: str, destination: str) -> None:
        src, dst = self.path(source), self.path(destination)
        if not src.is_file():
            raise missing(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
