"""Per-account storage usage, counted as files go in and out through `/files`, so a quota costs one read."""

from __future__ import annotations

from common import errors
from common.store.port import DocumentStore, Tx

USAGE = "usage"


class UsageRecords:
    docs: DocumentStore

    def change_usage(self, username: str, bytes_delta: int, files_delta: int, max_bytes: int, max_files: int) -> None:
        """Add to an account's usage; growing past a quota is a 403 `quota_exceeded` and changes nothing."""

        def work(tx: Tx) -> None:
            usage = tx.get(USAGE, username) or {"bytes": 0, "files": 0}
            new_bytes = max(0, usage["bytes"] + bytes_delta)
            new_files = max(0, usage["files"] + files_delta)
            if (bytes_delta > 0 and new_bytes > max_bytes) or (files_delta > 0 and new_files > max_files):
                raise errors.Forbidden(
                    f"Your space is full: {usage['files']} files, {usage['bytes']:,} bytes of at most {max_files} "
                    f"files and {max_bytes:,} bytes. Delete files (DELETE /files/<path>) to make room.",
                    code="quota_exceeded")
            tx.put(USAGE, username, {"bytes": new_bytes, "files": new_files})

        self.docs.transact(work)

    def usage(self, username: str) -> tuple[int, int]:
        doc = self.docs.get(USAGE, username) or {"bytes": 0, "files": 0}
        return int(doc["bytes"]), int(doc["files"])
