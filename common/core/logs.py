"""Log lines as Cloud Logging reads them: one JSON object per line, on stdout (below WARNING) or stderr.

Cloud Run turns each JSON line into a structured entry: `severity`, `message`,
`httpRequest`, `logging.googleapis.com/trace` and `.../spanId` are lifted into
the entry, every other key stays in `jsonPayload` (where the log-based metrics
of infra/terraform/monitoring.tf look, e.g. `event: "dead_letter"`). Locally the
same lines are what the stack prints.

The formatter is a few lines of `json` rather than google-cloud-logging's
StructuredLogHandler: that would bring gRPC into the model-free and auth-only
bundles, and it logs the full URL, query string included.

What a line may hold is decided here and in `common.http.requestlog`: the function,
the trace, the username, counts. Never headers, bodies, keys, passwords or
image bytes: nothing in this module reads a request.

`configure()` installs the handler on the root logger once per process. It
resolves `sys.stdout`/`sys.stderr` when it writes, and leaves every other
handler in place, so pytest's capture keeps working.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import sys
from typing import Any

log = logging.getLogger("imageclassify")

# what the current request (or event) has learnt about itself; set by common.http.requestlog, filled by annotate()
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("imageclassify_request",
                                                                                 default=None)
CONTEXT_KEYS = ("function", "user", "logging.googleapis.com/trace", "logging.googleapis.com/spanId",
                "logging.googleapis.com/trace_sampled", "messages")  # messages: how many a queue event carried
SEVERITIES = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# the attributes every LogRecord has: anything else on a record came through `extra=` and goes on the line
RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)  # Error Reporting reads the stack from here
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname in SEVERITIES else "DEFAULT",
            "message": message,
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "logger": record.name,
        }
        context = _context.get()
        if context:
            entry.update((k, context[k]) for k in CONTEXT_KEYS if k in context)
        entry.update((k, v) for k, v in vars(record).items() if k not in RESERVED and not k.startswith("_"))
        return json.dumps(entry, default=str, separators=(",", ":"))


class JsonHandler(logging.Handler):
    """Writes each record as one JSON line; the stream is looked up at each write, never kept."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            stream.write(line)
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never take a request down
            self.handleError(record)


def configure() -> None:
    """JSON lines from the root logger at LOG_LEVEL (once per process; later calls only re-read the level).

    werkzeug's own access lines are silenced: they carry the query string, and the request line replaces them.
    """
    from common.core.config import log_level

    root = logging.getLogger()
    if not any(isinstance(h, JsonHandler) for h in root.handlers):
        root.addHandler(JsonHandler())
    try:
        root.setLevel(log_level().upper())
    except RuntimeError:  # a bad LOG_LEVEL: keep logging, and say so
        root.setLevel(logging.INFO)
        log.warning("LOG_LEVEL must be one of debug, info, warning, error, critical; using info")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def begin(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Start a request's (or event's) context; `end` it with the token returned."""
    return _context.set(dict(fields))


def end(token: contextvars.Token[dict[str, Any] | None]) -> dict[str, Any]:
    """Close a context; what was annotated on it."""
    context = _context.get() or {}
    _context.reset(token)
    return context


def current() -> dict[str, Any]:
    """What the current request's context holds so far (a copy; empty outside a request)."""
    return dict(_context.get() or {})


def annotate(**fields: Any) -> None:
    """Put facts on the current request's line (e.g. `user`, `images`); nothing happens outside a request."""
    context = _context.get()
    if context is not None:
        context.update(fields)


def add_tokens(spent: int, refunded: int) -> None:
    """Add a committed charge or refund to the current request's `tokens` {spent, refunded}."""
    context = _context.get()
    if context is not None:
        tokens = context.setdefault("tokens", {"spent": 0, "refunded": 0})
        tokens["spent"] += spent
        tokens["refunded"] += refunded


def _short(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)[:200]


def _ids(message: Any) -> dict[str, Any]:
    return {k: _short(message[k]) for k in ("job_id", "object", "owner", "name", "kind", "chunk")
            if isinstance(message, dict) and k in message}


def refused_dead_letter(message: Any) -> None:
    """Something reached the dead-letter endpoint that we did not send (unsigned, or not one of our messages):
    logged as refused, never as a dead letter, so that whoever can reach the endpoint cannot raise the alert."""
    from common.core import metrics

    metrics.count("dead_letters_refused")
    log.warning("refused a message on the dead-letter endpoint: not signed by us, or not one of our messages",
                extra={"event": "dead_letter_refused", "dead_letter": _ids(message)})


def dead_letter(kind: str, message: Any) -> None:
    """A queue message exhausted its deliveries (`event: "dead_letter"`, WARNING: the log-based metric and alert
    of monitoring.tf count these). Only the message's identifiers are logged, cut short: it is not trusted yet."""
    from common.core import metrics

    metrics.count("dead_letters_handled", kind=kind)
    log.warning("a queue message (%s) exhausted its deliveries; its work is failed and refunded", kind,
                extra={"event": "dead_letter", "dead_letter": _ids(message)})
