"""The one list of function targets: what the bundles, the local stack, the tests and the Terraform check read.

Adding a function is its folder under `functions/` plus one entry here (and its
Terraform resource, which `tests/test_terraform.py` then demands).

- `folder`:    functions/<folder>/main.py defines the target
- `signature`: `http`, or `cloudevent` for targets fed by a queue or a bucket
- `routes`:    the first path segments the local stack sends to it (`_` marks internal ones)
- `trigger`:   how the cloud reaches it: `http` (public, authenticates every request itself),
               `queue` (Pub/Sub push, internal), `bucket` (Eventarc object finalized, internal) or
               `schedule` (Cloud Scheduler with OIDC, internal)
- `model`:     whether its bundle carries the model files: the target needs "model" in `common.http.health.NEEDS`,
               the one table of what each target needs
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.http import health

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    name: str
    folder: str
    signature: str = "http"
    routes: tuple[str, ...] = ()
    trigger: str = "http"

    @property
    def source(self) -> Path:
        return REPO / "functions" / self.folder / "main.py"

    @property
    def model(self) -> bool:
        return "model" in health.needs_of(self.name)

    @property
    def internal(self) -> bool:
        return self.trigger != "http"


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("register", "register", routes=("register", "api-key", "sessions", "keys", "password", "account")),
    Target("tokens", "tokens", routes=("token", "tokens", "refill", "admin", "usage", "usage.csv", "webhooks")),
    Target("files_api", "files", routes=("files",)),
    Target("classify", "classify", routes=("classify", "upload", "predict")),
    Target("sort_job", "sort_job", routes=("jobs", "classification-job")),
    Target("models", "models", routes=("models",)),
    Target("sort_worker", "sort_job", "cloudevent", routes=("_worker",), trigger="queue"),
    Target("sort_dead_letter", "sort_job", "cloudevent", routes=("_dead_letter",), trigger="queue"),
    Target("on_upload", "sort_job", "cloudevent", routes=("_upload",), trigger="bucket"),
    Target("sweeper", "sort_job", routes=("_sweep",), trigger="schedule"),
    Target("web", "web", routes=("", "assets", "config.json", "openapi.json", "docs")),
)}


def routes() -> dict[str, str]:
    """First path segment -> target name, for the local stack's dispatcher."""
    return {route: t.name for t in TARGETS.values() for route in t.routes}
