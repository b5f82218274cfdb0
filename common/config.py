"""Every setting, read from environment variables in this one module.

The defaults give the embedded local backends (SQLite, a bucket folder, the
local HTTP queue), so a laptop needs no configuration at all; a cloud
deployment swaps backends with environment variables alone.

`settings()` is cached for the life of the process, like a function instance's
configuration; tests that change the environment call `settings.cache_clear()`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value if value else default


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _positive(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise RuntimeError(f"environment variable {name} must be at least 1, got {value}")
    return value


def _float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name} must be a number, got {raw!r}") from None


def _bool(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def _endpoints(name: str) -> tuple[tuple[str, str], ...]:
    """A JSON object of route group -> base URL (https://..., no trailing slash); empty = same origin."""
    raw = _env(name, "{}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and (v == "" or v.startswith(("https://", "http://")))
            for k, v in value.items()):
        raise RuntimeError(f"environment variable {name} must be a JSON object of route -> http(s) base URL, "
                           f"e.g. {{\"classify\": \"https://classify-abc.run.app\"}}")
    return tuple((k, v.rstrip("/")) for k, v in sorted(value.items()))


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _env(name, default).lower()
    if value not in allowed:
        raise RuntimeError(f"environment variable {name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    # accounts + jobs store
    store_backend: str
    sqlite_path: Path
    gcp_project: str
    store_record: str  # a folder: every committed write is recorded there (common/store/recorder.py; the scale bench)
    # accounts
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
    # requests and images
    max_body_bytes: int
    max_image_pixels: int
    max_batch: int
    reservation_lease: float
    reservation_holder: str  # set by the local stack: its reservations are released at its next start
    # HTTP: browser origins answered with CORS headers; the local stack server's threads and timeouts
    cors_origins: tuple[str, ...]
    http_threads: int
    http_header_timeout: float
    http_request_timeout: float
    http_idle_timeout: float
    http_connection_limit: int
    # URL fetching
    fetch_connect_timeout: float
    fetch_deadline: float
    fetch_max_bytes: int
    fetch_allow_loopback: bool
    # model
    models_dir: Path
    default_model: str
    model_interpreters: int  # LiteRT interpreters per model file: concurrent requests infer side by side
    model_threads: int  # XNNPACK threads per interpreter
    model_lead_threads: int  # XNNPACK threads of the pool's first interpreter, the one a lone request gets
    model_warmup: bool  # one inference at load, so the first request pays no set-up
    # storage, queue and events
    storage_backend: str
    bucket: str
    bucket_dir: Path
    queue_backend: str
    worker_url: str
    dead_letter_url: str
    queue_path: Path
    queue_lease: float
    queue_max_attempts: int
    job_stall_seconds: float
    sweep_interval: float
    pubsub_topic: str
    sqs_queue_url: str
    watch_prefix: str
    labels_prefix: str
    autosort_classes: tuple[str, ...]
    internal_secret: str
    space_max_bytes: int
    space_max_files: int
    default_min_score: float
    # web console: where each route group is served when the functions have their own URLs
    api_endpoints: tuple[tuple[str, str], ...]
    # custom models
    model_max_images: int
    model_chunk_size: int
    model_fit_seconds: float
    # operating it
    health_timeout: float
    # /healthz: a queue with messages and no delivery for a lease and this many seconds is stalled; a data folder
    # with less free space than this is full
    queue_stalled_after: float = 30.0
    disk_min_free_bytes: int = 32 * 1024 * 1024
    dynamodb_table: str = "imageclassify"  # STORE_BACKEND=dynamodb: the one table (common/store/dynamodb.py)


def log_level() -> str:
    """LOG_LEVEL, read apart from `settings()` because logging is configured when a function is imported, before
    any request (and any other setting) is looked at."""
    return _choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical"))


@functools.cache
def settings() -> Settings:
    data_dir = Path(_env("DATA_DIR", ".data"))
    return Settings(
        data_dir=data_dir,
        store_backend=_choice("STORE_BACKEND", "sqlite", ("sqlite", "firestore", "dynamodb")),
        sqlite_path=Path(_env("SQLITE_PATH", str(data_dir / "accounts.db"))),
        gcp_project=_env("GOOGLE_CLOUD_PROJECT", "imageclassify-local"),
        store_record=_env("STORE_RECORD", ""),
        initial_tokens=_int("INITIAL_TOKENS", 5),
        bcrypt_rounds=_int("BCRYPT_ROUNDS", 12),
        bcrypt_concurrency=_int("BCRYPT_CONCURRENCY", 1),
        bcrypt_queue=_int("BCRYPT_QUEUE", 2),
        login_free_failures=_int("LOGIN_FREE_FAILURES", 5),
        signups_per_address=_int("SIGNUPS_PER_ADDRESS", 5),
        signups_per_minute=_int("SIGNUPS_PER_MINUTE", 60),
        trusted_proxies=_int("TRUSTED_PROXIES", 0),
        admin_username=_env("ADMIN_USERNAME", ""),
        admin_password=_env("ADMIN_PASSWORD", ""),
        max_body_bytes=_int("MAX_BODY_BYTES", 10 * MB),
        max_image_pixels=_int("MAX_IMAGE_PIXELS", 40_000_000),
        max_batch=_int("MAX_BATCH", 16),
        # twice the classify function's timeout: a request that outlives it anyway is refused, never served free
        reservation_lease=_float("RESERVATION_LEASE", 120.0),
        reservation_holder=_env("RESERVATION_HOLDER", ""),
        cors_origins=tuple(o.strip().rstrip("/") for o in _env("CORS_ORIGINS", "").split(",") if o.strip()),
        http_threads=_int("HTTP_THREADS", 8),
        http_header_timeout=_float("HTTP_HEADER_TIMEOUT", 10.0),
        http_request_timeout=_float("HTTP_REQUEST_TIMEOUT", 60.0),
        http_idle_timeout=_float("HTTP_IDLE_TIMEOUT", 30.0),
        http_connection_limit=_int("HTTP_CONNECTION_LIMIT", 2000),
        fetch_connect_timeout=_float("FETCH_CONNECT_TIMEOUT", 3.0),
        fetch_deadline=_float("FETCH_DEADLINE", 10.0),
        fetch_max_bytes=_int("FETCH_MAX_BYTES", 10 * MB),
        fetch_allow_loopback=_bool("FETCH_ALLOW_LOOPBACK", False),
        models_dir=Path(_env("MODELS_DIR", str(data_dir / "models"))),
        default_model=_env("DEFAULT_MODEL", "efficientnet_lite0"),
        # measured on 2 cores with 2 concurrent callers: one single-threaded interpreter per core serves the most
        # images per second (see common/interpreters.py); MODEL_THREADS=2 favours a lone caller's latency
        model_interpreters=_positive("MODEL_INTERPRETERS", min(os.cpu_count() or 1, 4)),
        model_threads=_positive("MODEL_THREADS", 1),
        model_lead_threads=_positive("MODEL_LEAD_THREADS", min(os.cpu_count() or 1, 2)),
        model_warmup=_bool("MODEL_WARMUP", True),
        storage_backend=_choice("STORAGE_BACKEND", "local", ("local", "gcs", "s3")),
        bucket=_env("BUCKET", "imageclassify-local"),
        bucket_dir=Path(_env("BUCKET_DIR", str(data_dir / "bucket"))),
        queue_backend=_choice("QUEUE_BACKEND", "local", ("local", "pubsub", "sqs")),
        worker_url=_env("WORKER_URL", "http://127.0.0.1:8080/_worker"),
        dead_letter_url=_env("DEAD_LETTER_URL", "http://127.0.0.1:8080/_dead_letter"),
        queue_path=Path(_env("QUEUE_PATH", str(data_dir / "queue.db"))),
        queue_lease=_float("QUEUE_LEASE", 60.0),
        queue_max_attempts=_int("QUEUE_MAX_ATTEMPTS", 5),
        job_stall_seconds=_float("JOB_STALL_SECONDS", 900.0),
        sweep_interval=_float("SWEEP_INTERVAL", 30.0),
        pubsub_topic=_env("PUBSUB_TOPIC", "sort-images"),
        sqs_queue_url=_env("SQS_QUEUE_URL", ""),
        watch_prefix=_env("WATCH_PREFIX", "inbox/"),
        labels_prefix=_env("LABELS_PREFIX", "labels/"),
        internal_secret=_env("INTERNAL_SECRET", ""),
        space_max_bytes=_int("SPACE_MAX_BYTES", 1024 * MB),
        space_max_files=_int("SPACE_MAX_FILES", 50_000),
        autosort_classes=tuple(c.strip() for c in _env("AUTOSORT_CLASSES", "").split(",") if c.strip()),
        default_min_score=_float("MIN_SCORE", 0.3),
        api_endpoints=_endpoints("API_ENDPOINTS"),
        model_max_images=_int("MODEL_MAX_IMAGES", 20_000),
        model_chunk_size=_int("MODEL_CHUNK_SIZE", 64),
        # a fit must end well inside one queue delivery (QUEUE_LEASE, the push deadline), or it is delivered again
        model_fit_seconds=_float("MODEL_FIT_SECONDS", 40.0),
        health_timeout=_float("HEALTH_TIMEOUT", 3.0),
        queue_stalled_after=_float("QUEUE_STALLED_AFTER", 30.0),
        disk_min_free_bytes=_int("DISK_MIN_FREE_BYTES", 32 * 1024 * 1024),
        dynamodb_table=_env("DYNAMODB_TABLE", "imageclassify"),
    )
