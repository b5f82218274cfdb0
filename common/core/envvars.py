"""Reading one environment variable as a typed setting: a bad value stops the start-up with a message naming the
variable and what it must be (a function that starts misconfigured would fail every request instead)."""

from __future__ import annotations

import json
import os


def text(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value if value else default


def integer(name: str, default: int) -> int:
    raw = text(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name} must be an integer, got {raw!r}") from None


def positive(name: str, default: int) -> int:
    value = integer(name, default)
    if value < 1:
        raise RuntimeError(f"environment variable {name} must be at least 1, got {value}")
    return value


def number(name: str, default: float) -> float:
    raw = text(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name} must be a number, got {raw!r}") from None


def flag(name: str, default: bool) -> bool:
    return text(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def endpoints(name: str) -> tuple[tuple[str, str], ...]:
    """A JSON object of route group -> base URL (https://..., no trailing slash); empty = same origin."""
    raw = text(name, "{}")
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


def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = text(name, default).lower()
    if value not in allowed:
        raise RuntimeError(f"environment variable {name} must be one of {', '.join(allowed)}; got {value!r}")
    return value
