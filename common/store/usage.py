"""Per-account storage usage, counted as files go in and out through `/files` and as jobs write their outputs,
so a quota costs one read."""

from __future__ import annotations

from common import errors
from common.store.port import DocumentStore, Tx

USAGE = "usage"


def add_usage(tx: Tx, username: str, bytes_delta: int, files_delta: int,
              limits: tuple[int, int] | None = None) -> None:
    """Add to an account's usage inside `tx`; with `limits` (bytes, files), growing past them is a 403
    `quota_exceeded` and changes nothing. A job's outputs are counted without limits: they were paid for."""
    if bytes_delta == files_delta == 0:
        return
    usage = tx.get(USAGE, username) or {"bytes": 0, "files": 0}
    new_bytes = max(0, usage["bytes"] + bytes_delta)
    new_files = max(0, usage["files"] + files_delta)
    if limits is not None and (
            (bytes_delta > 0 and new_bytes > limits[0]) or (files_delta > 0 and new_files > limits[1])):
        raise errors.Forbidden(
            f"Your space is full: {usage['files']} files, {usage['bytes']:,} bytes of at most {limits[1]} "
            f"files and {limits[0]:,} bytes. Delete files (DELETE /files/<path>) to make room.",
            code="quota_exceeded")
    tx.put(USAGE, username, {"bytes": new_bytes, "files": new_files})


class UsageRecords:
    docs: DocumentStore

    def change_usage(self, username: str, bytes_delta: int, files_delta: int, max_bytes: int, max_files: int) -> None:
        """Add to an account's usage; growing past a quota is a 403 `quota_exceeded` and changes nothing."""
        self.docs.transact(lambda tx: add_usage(tx, username, bytes_delta, files_delta, (max_bytes, max_files)))

    def usage(self, username: str) -> tuple[int, int]:
        doc = self.docs.get(USAGE, username) or {"bytes": 0, "files": 0}
        return int(doc["bytes"]), int(doc["files"])
