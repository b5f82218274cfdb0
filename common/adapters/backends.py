"""Which adapter serves each port, chosen by configuration: the one place that picks them.

Each client is created once per process, on first use (`Lazy`), so a function
that never touches a port never pays for its client. The adapters are imported
here only when chosen: a `register` instance never imports the Pub/Sub or S3
libraries, and no adapter imports this module (no import circle).
"""

from __future__ import annotations

from common.adapters.queue.port import Queue
from common.adapters.storage.port import Storage
from common.core.config import settings
from common.core.lazy import Lazy
from common.records.port import DocumentStore
from common.records.store import PURGED_KINDS, Store


def _open_documents() -> DocumentStore:
    s = settings()
    if s.store.store_backend == "firestore":
        from common.adapters.store.firestore import FirestoreDocuments

        return FirestoreDocuments(s.gcp_project)
    if s.store.store_backend == "dynamodb":
        from common.adapters.store.dynamodb import DynamoDocuments

        return DynamoDocuments(s.store.dynamodb_table, ttl_kinds=PURGED_KINDS)
    from common.adapters.store.sqlite import SqliteDocuments

    return SqliteDocuments(s.store.sqlite_path)


def _open_store() -> Store:
    docs, record = _open_documents(), settings().store.store_record
    if record:  # the scale bench: every committed write recorded with its document and time
        from common.adapters.store.recorder import RecordingDocuments

        docs = RecordingDocuments(docs, record)
    return Store(docs)


def _open_storage() -> Storage:
    s = settings()
    if s.storage.storage_backend == "gcs":
        from common.adapters.storage.gcs import GcsStorage

        return GcsStorage(s.storage.bucket, s.gcp_project)
    if s.storage.storage_backend == "s3":
        from common.adapters.storage.s3 import S3Storage

        return S3Storage(s.storage.bucket)
    from common.adapters.storage.local import LocalStorage

    return LocalStorage(s.storage.bucket_dir, s.storage.bucket)


def _open_queue() -> Queue:
    s = settings()
    if s.queue.queue_backend == "pubsub":
        from common.adapters.queue.pubsub import PubSubQueue

        return PubSubQueue(s.gcp_project, s.queue.pubsub_topic)
    if s.queue.queue_backend == "sqs":
        from common.adapters.queue.sqs import SqsQueue

        return SqsQueue(s.queue.sqs_queue_url)
    return local_queue()


def local_queue(deliver: bool = True) -> Queue:
    """The embedded queue as configured; `deliver=False` only stores messages (for a short-lived process
    such as `common.ops.admin`, while the running stack delivers them)."""
    from common.adapters.queue.local import LocalQueue

    s = settings()
    return LocalQueue(s.queue.queue_path, s.queue.worker_url, s.queue.dead_letter_url, headers=internal_headers(),
                      lease=s.queue.queue_lease, max_attempts=s.queue.queue_max_attempts, workers=s.queue.queue_workers,
                      batch=s.queue.queue_batch, deliver=deliver,
                      stalled_after=s.health.queue_stalled_after)


def internal_headers() -> dict[str, str]:
    """What the local stack's own deliveries carry, so its internal endpoints can tell them from anyone else's."""
    secret = settings().queue.internal_secret
    return {INTERNAL_HEADER: secret} if secret else {}


INTERNAL_HEADER = "X-Internal-Token"


_store: Lazy[Store] = Lazy(_open_store, lambda store: store.close())
_storage: Lazy[Storage] = Lazy(_open_storage)
_queue: Lazy[Queue] = Lazy(_open_queue, lambda queue: getattr(queue, "stop", lambda: None)())
get_store, reset_store = _store.get, _store.reset
get_storage, reset_storage = _storage.get, _storage.reset
get_queue, reset_queue = _queue.get, _queue.reset


def reset_all() -> None:
    """Forget every client (tests switch backends between suites)."""
    reset_store()
    reset_storage()
    reset_queue()
