"""`imageclassify upload`: a local folder into the account's space, through `PUT /files/<path>`.

Files already there with the same size are skipped (one paged `GET /files?prefix=`
up front), so a rerun after an interruption sends only what is missing. A file
the server refuses (not an image, too large) is listed and the rest go on; a
refusal of the account (401, 403 quota_exceeded) stops the upload.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageclassify_client import inputs
from imageclassify_client.api import Client
from imageclassify_client.errors import ApiError, ClientError, UsageProblem
from imageclassify_client.output import Bar

PER_FILE_STATUSES = {400, 413, 415, 422}


def normalise_prefix(prefix: str) -> str:
    """A folder in the space: no leading '/', one trailing '/', no '.' or '..' segments ('' is the space root)."""
    parts = [p for p in prefix.replace("\\", "/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UsageProblem(f"--to must not contain '.' or '..' segments: {prefix!r}")
    return "".join(f"{p}/" for p in parts)


@dataclass
class Upload:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    bytes_sent: int = 0

    def json(self, prefix: str) -> dict[str, Any]:
        return {"prefix": prefix, "uploaded": len(self.uploaded), "skipped": len(self.skipped),
                "bytes": self.bytes_sent, "failed": [{"path": p, "message": m} for p, m in self.failures]}


def upload_folder(client: Client, folder: Path, prefix: str,
                  progress: Bar | None = None) -> tuple[Upload, ClientError | None]:
    """Upload every (non-hidden) file below `folder` to `prefix<relative path>`; the result and a stopping error."""
    if not folder.is_dir():
        raise UsageProblem(f"No such folder: {folder}")
    files = inputs.walk(folder)
    result = Upload()
    if progress is not None:
        progress.update(total=len(files))
    try:
        there = {str(f.get("path", "")).lstrip("/"): f.get("size") for f in client.list_files(prefix)}
        for path in files:
            remote = prefix + path.relative_to(folder).as_posix()
            size = path.stat().st_size
            if there.get(remote) == size:
                result.skipped.append(remote)
            else:
                _put(client, path, remote, result)
            if progress is not None:
                progress.advance()
    except ClientError as exc:
        return result, exc
    return result, None


def _put(client: Client, path: Path, remote: str, result: Upload) -> None:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        data = path.read_bytes()
    except OSError as exc:
        result.failures.append((remote, f"Cannot read it: {exc}"))
        return
    try:
        client.put_file(remote, data, content_type)
    except ApiError as exc:
        if exc.status not in PER_FILE_STATUSES:
            raise
        result.failures.append((remote, exc.message))
        return
    result.uploaded.append(remote)
    result.bytes_sent += len(data)
