"""Every setting, read from environment variables in this one module.

The defaults give the embedded local backends (SQLite, a bucket folder, the
local HTTP queue), so a laptop needs no configuration at all; a cloud
deployment swaps backends with environment variables alone.

`settings()` is cached for the life of the process, like a function instance's
configuration; tests that change the environment call `settings.cache_clear()`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from common.core.envvars import choice, endpoints, flag, integer, number, positive, text

MB = 1024 * 1024


@dataclass(frozen=True)
class StoreSettings:
    """The accounts and jobs store."""

    store_backend: str
    sqlite_path: Path
    dynamodb_table: str  # STORE_BACKEND=dynamodb: the one table (adapters/store/dynamodb.py)
    store_record: str  # a folder: every committed write is recorded there (adapters/store/recorder.py; the scale bench)


@dataclass(frozen=True)
class AccountsSettings:
    """Sign-up, passwords and their throttles, administrators."""

    initial_tokens: int
    bcrypt_rounds: int
    bcrypt_concurrency: int
    bcrypt_queue: int
    login_free_failures: int
    signups_per_address: int
    signups_per_minute: int
    trusted_proxies: int
    admin_username: str
    admin_password: str
    max_keys: int = 20  # named API keys per account (POST /keys)
    name_hold_days: float = 30.0  # a deleted account's username is refused at sign-up for this long


@dataclass(frozen=True)
class BillingSettings:
    """Token reservations."""

    reservation_lease: float
    reservation_holder: str  # set by the local stack: its reservations are released at its next start
    lease_seconds: float  # how long an instance spends from one token lease (common/accounts/leasing.py); 0: never
    lease_min_rate: float  # requests per second of one account in one instance before it takes a lease
    lease_min_balance: int  # an account holding less is charged on its own document (the sign-up grant)
    lease_floor: int  # tokens a lease never takes from the account
    lease_lanes: int  # reservations of one lease recorded at once


@dataclass(frozen=True)
class HttpSettings:
    """HTTP: body and batch limits, CORS, the local stack server, the console's endpoints."""

    max_body_bytes: int
    max_batch: int
    cors_origins: tuple[str, ...]
    http_threads: int
    http_header_timeout: float
    http_request_timeout: float
    http_idle_timeout: float
    http_connection_limit: int
    api_endpoints: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FetchSettings:
    """Fetching an image from a URL."""

    fetch_connect_timeout: float
    fetch_deadline: float
    fetch_max_bytes: int
    fetch_allow_loopback: bool


@dataclass(frozen=True)
class ModelsSettings:
    """The models: files, the interpreter pool, image bounds, custom-model training."""

    max_image_pixels: int
    models_dir: Path
    default_model: str
    model_interpreters: int  # LiteRT interpreters per model file: concurrent requests infer side by side
    model_threads: int  # XNNPACK threads per interpreter
    model_lead_threads: int  # XNNPACK threads of the pool's first interpreter, the one a lone request gets
    model_warmup: bool  # one inference at load, so the first request pays no set-up
    model_max_images: int
    model_chunk_size: int
    model_fit_seconds: float


@dataclass(frozen=True)
class StorageSettings:
    """The bucket and each account's space in it."""

    storage_backend: str
    bucket: str
    bucket_dir: Path
    space_max_bytes: int
    space_max_files: int
    image_max_bytes: int  # an image read from the bucket: on Lambda above the request body's cap, for larger images


@dataclass(frozen=True)
class QueueSettings:
    """The queue and its deliveries."""

    queue_backend: str
    worker_url: str
    dead_letter_url: str
    queue_path: Path
    queue_lease: float
    queue_max_attempts: int
    queue_workers: int  # the local queue's delivery threads: deliveries in flight at once
    queue_batch: int  # images per delivery of the local queue at most (sorted side by side by the worker)
    pubsub_topic: str
    sqs_queue_url: str
    internal_secret: str


@dataclass(frozen=True)
class JobsSettings:
    """Sort jobs, the sweeper and labelling uploads."""

    job_stall_seconds: float
    sweep_interval: float
    watch_prefix: str
    labels_prefix: str
    autosort_classes: tuple[str, ...]
    default_min_score: float


@dataclass(frozen=True)
class HealthSettings:
    """`/healthz`."""

    health_timeout: float
    queue_stalled_after: float
    disk_min_free_bytes: int


@dataclass(frozen=True)
class WebhookSettings:
    """Webhook deliveries (common/accounts/deliveries.py)."""

    webhook_backoff: tuple[float, ...]  # seconds before each retry; given up after the last, or after a day
    webhook_timeout: float  # one attempt's whole wall clock (connect, send, answer)


@dataclass(frozen=True)
class Settings:
    """Every setting, grouped by concern (`settings().http.max_body_bytes`)."""

    data_dir: Path
    gcp_project: str  # the store (Firestore), the bucket (GCS) and the queue (Pub/Sub)
    store: StoreSettings
    accounts: AccountsSettings
    billing: BillingSettings
    http: HttpSettings
    fetch: FetchSettings
    models: ModelsSettings
    storage: StorageSettings
    queue: QueueSettings
    jobs: JobsSettings
    health: HealthSettings
    webhooks: WebhookSettings


def log_level() -> str:
    """LOG_LEVEL, read apart from `settings()` because logging is configured when a function is imported, before
    any request (and any other setting) is looked at."""
    return choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical"))


@functools.cache
def settings() -> Settings:
    data_dir = Path(text("DATA_DIR", ".data"))
    return Settings(
        data_dir=data_dir,
        gcp_project=text("GOOGLE_CLOUD_PROJECT", "imageclassify-local"),
        store=StoreSettings(
            store_backend=choice("STORE_BACKEND", "sqlite", ("sqlite", "firestore", "dynamodb")),
            sqlite_path=Path(text("SQLITE_PATH", str(data_dir / "accounts.db"))),
            dynamodb_table=text("DYNAMODB_TABLE", "imageclassify"),
            store_record=text("STORE_RECORD", ""),
        ),
        accounts=AccountsSettings(
            initial_tokens=integer("INITIAL_TOKENS", 5),
            bcrypt_rounds=integer("BCRYPT_ROUNDS", 12),
            bcrypt_concurrency=integer("BCRYPT_CONCURRENCY", 1),
            bcrypt_queue=integer("BCRYPT_QUEUE", 2),
            login_free_failures=integer("LOGIN_FREE_FAILURES", 5),
            signups_per_address=integer("SIGNUPS_PER_ADDRESS", 5),
            signups_per_minute=integer("SIGNUPS_PER_MINUTE", 60),
            trusted_proxies=integer("TRUSTED_PROXIES", 0),
            admin_username=text("ADMIN_USERNAME", ""),
            admin_password=text("ADMIN_PASSWORD", ""),
            max_keys=integer("MAX_KEYS", 20),
            name_hold_days=number("NAME_HOLD_DAYS", 30.0),
        ),
        billing=BillingSettings(
            # twice the classify function's timeout: a request that outlives it anyway is refused, never served free
            reservation_lease=number("RESERVATION_LEASE", 120.0),
            reservation_holder=text("RESERVATION_HOLDER", ""),
            lease_seconds=number("LEASE_SECONDS", 20.0),
            lease_min_rate=number("LEASE_MIN_RATE", 2.0),
            lease_min_balance=integer("LEASE_MIN_BALANCE", 100),
            lease_floor=integer("LEASE_FLOOR", 10),
            lease_lanes=integer("LEASE_LANES", 8),
        ),
        http=HttpSettings(
            max_body_bytes=integer("MAX_BODY_BYTES", 10 * MB),
            max_batch=integer("MAX_BATCH", 16),
            cors_origins=tuple(o.strip().rstrip("/") for o in text("CORS_ORIGINS", "").split(",") if o.strip()),
            http_threads=integer("HTTP_THREADS", 8),
            http_header_timeout=number("HTTP_HEADER_TIMEOUT", 10.0),
            http_request_timeout=number("HTTP_REQUEST_TIMEOUT", 60.0),
            http_idle_timeout=number("HTTP_IDLE_TIMEOUT", 30.0),
            http_connection_limit=integer("HTTP_CONNECTION_LIMIT", 2000),
            api_endpoints=endpoints("API_ENDPOINTS"),
        ),
        fetch=FetchSettings(
            fetch_connect_timeout=number("FETCH_CONNECT_TIMEOUT", 3.0),
            fetch_deadline=number("FETCH_DEADLINE", 10.0),
            fetch_max_bytes=integer("FETCH_MAX_BYTES", 10 * MB),
            fetch_allow_loopback=flag("FETCH_ALLOW_LOOPBACK", False),
        ),
        models=ModelsSettings(
            max_image_pixels=integer("MAX_IMAGE_PIXELS", 40_000_000),
            models_dir=Path(text("MODELS_DIR", str(data_dir / "models"))),
            default_model=text("DEFAULT_MODEL", "efficientnet_lite0"),
            # measured on 2 cores with 2 concurrent callers: one single-threaded interpreter per core serves the most
            # images per second (see common/models/interpreters.py); MODEL_THREADS=2 favours a lone caller's latency
            model_interpreters=positive("MODEL_INTERPRETERS", min(os.cpu_count() or 1, 4)),
            model_threads=positive("MODEL_THREADS", 1),
            model_lead_threads=positive("MODEL_LEAD_THREADS", min(os.cpu_count() or 1, 2)),
            model_warmup=flag("MODEL_WARMUP", True),
            model_max_images=integer("MODEL_MAX_IMAGES", 20_000),
            model_chunk_size=integer("MODEL_CHUNK_SIZE", 64),
            # a fit must end well inside one queue delivery (QUEUE_LEASE, the push deadline), or it is delivered again
            model_fit_seconds=number("MODEL_FIT_SECONDS", 40.0),
        ),
        storage=StorageSettings(
            storage_backend=choice("STORAGE_BACKEND", "local", ("local", "gcs", "s3")),
            bucket=text("BUCKET", "imageclassify-local"),
            bucket_dir=Path(text("BUCKET_DIR", str(data_dir / "bucket"))),
            space_max_bytes=integer("SPACE_MAX_BYTES", 1024 * MB),
            space_max_files=integer("SPACE_MAX_FILES", 50_000),
            image_max_bytes=integer("IMAGE_MAX_BYTES", 10 * MB),
        ),
        queue=QueueSettings(
            queue_backend=choice("QUEUE_BACKEND", "local", ("local", "pubsub", "sqs")),
            worker_url=text("WORKER_URL", "http://127.0.0.1:8080/_worker"),
            dead_letter_url=text("DEAD_LETTER_URL", "http://127.0.0.1:8080/_dead_letter"),
            queue_path=Path(text("QUEUE_PATH", str(data_dir / "queue.db"))),
            queue_lease=number("QUEUE_LEASE", 60.0),
            queue_max_attempts=integer("QUEUE_MAX_ATTEMPTS", 5),
            queue_workers=positive("QUEUE_WORKERS", 2 * (os.cpu_count() or 1)),
            queue_batch=positive("QUEUE_BATCH", 8),
            pubsub_topic=text("PUBSUB_TOPIC", "sort-images"),
            sqs_queue_url=text("SQS_QUEUE_URL", ""),
            internal_secret=text("INTERNAL_SECRET", ""),
        ),
        jobs=JobsSettings(
            job_stall_seconds=number("JOB_STALL_SECONDS", 900.0),
            sweep_interval=number("SWEEP_INTERVAL", 30.0),
            watch_prefix=text("WATCH_PREFIX", "inbox/"),
            labels_prefix=text("LABELS_PREFIX", "labels/"),
            autosort_classes=tuple(c.strip() for c in text("AUTOSORT_CLASSES", "").split(",") if c.strip()),
            default_min_score=number("MIN_SCORE", 0.3),
        ),
        health=HealthSettings(
            health_timeout=number("HEALTH_TIMEOUT", 3.0),
            queue_stalled_after=number("QUEUE_STALLED_AFTER", 30.0),
            disk_min_free_bytes=integer("DISK_MIN_FREE_BYTES", 32 * 1024 * 1024),
        ),
        webhooks=WebhookSettings(
            # about a day in all: 1 min, 5 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h
            webhook_backoff=tuple(float(step) for step in text(
                "WEBHOOK_BACKOFF", "60,300,1800,3600,7200,14400,28800,28800").split(",") if step.strip()),
            webhook_timeout=number("WEBHOOK_TIMEOUT", 5.0),
        ),
    )
