"""Which adapter serves each port, chosen by configuration: the one place that picks them.

Each client is created once per process, on first use (`Lazy`), so a function
that never touches a port never pays for its client. The adapters are imported
here only when chosen: a `register` instance never imports the Pub/Sub or S3
libraries, and no adapter imports this module (no import circle).
"""

from __future__ import annotations

from common.config import settings
from common.lazy import Lazy
from common.queue.port import Queue
from common.storage.port import Storage
from common.store.accounts import KEYS as API_KEYS
from common.store.port import DocumentStore
from common.store.reservations import KEYS
from common.store.store import Store
from common.store.throttles import FAILURES, WINDOWS

# What `Store.purge_expired` deletes once expired: DynamoDB's TTL may delete them too (never spends or space writes,
# whose expiry the sweeper must act on)
PURGED_KINDS = (WINDOWS, KEYS, FAILURES, API_KEYS)


def _open_documents() -> DocumentStore:
    s = settings()
    if s.store_backend == "firestore":
        from common.store.firestore import FirestoreDocuments

        return FirestoreDocuments(s.gcp_project)
    if s.store_backend == "dynamodb":
        from common.store.dynamodb import DynamoDocuments

        return DynamoDocuments(s.dynamodb_table, ttl_kinds=PURGED_KINDS)
    from common.store.sqlite import SqliteDocuments

    return SqliteDocuments(s.sqlite_path)


def _open_store() -> Store:
    docs, record = _open_documents(), settings().store_record
    if record:  # the scale bench: every committed write recorded with its document and time
        from common.store.recorder import RecordingDocuments

        docs = RecordingDocuments(docs, record)
    return Store(docs)


def _open_storage() -> Storage:
    s = settings()
    if s.storage_backend == "gcs":
        from common.storage.gcs import GcsStorage

        return GcsStorage(s.bucket, s.gcp_project)
    if s.storage_backend == "s3":
        from common.storage.s3 import S3Storage

        return S3Storage(s.bucket)
    from common.storage.local import LocalStorage

    return LocalStorage(s.bucket_dir, s.bucket)


def _open_queue() -> Queue:
    s = settings()
    if s.queue_backend == "pubsub":
        from common.queue.pubsub import PubSubQueue

        return PubSubQueue(s.gcp_project, s.pubsub_topic)
    if s.queue_backend == "sqs":
        from common.queue.sqs import SqsQueue

        return SqsQueue(s.sqs_queue_url)
    return local_queue()


def local_queue(deliver: bool = True) -> Queue:
    """The embedded queue as configured; `deliver=False` only stores messages (for a short-lived process
    such as `common.admin`, while the running stack delivers them)."""
    from common.queue.local import LocalQueue

    s = settings()
    return LocalQueue(s.queue_path, s.worker_url, s.dead_letter_url, headers=internal_headers(),
                      lease=s.queue_lease, max_attempts=s.queue_max_attempts, deliver=deliver,
                      stalled_after=s.queue_stalled_after)


def internal_headers() -> dict[str, str]:
    """What the local stack's own deliveries carry, so its internal endpoints can tell them from anyone else's."""
    secret = settings().internal_secret
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
