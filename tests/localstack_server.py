"""The local stack (`python -m infra.localstack`) as a test server: its own process group, awaited on /healthz."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import requests

from infra.processes import Server, free_port, http_ok
from tests.conftest import GENEROUS_LIMITS, REPO
from tests.stack import BACKEND_VARIABLES

ADMIN = ("boss", "boss-password")
BACKEND_VARS = (*BACKEND_VARIABLES, "API_ENDPOINTS")


def start(data_dir: Path, models_dir: Path, *args: str, **env: str) -> Server:
    """The whole stack on a free loopback port, on the embedded backends under `data_dir`."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if k not in BACKEND_VARS}
    full.update(PYTHONPATH=str(REPO), MODELS_DIR=str(models_dir), BCRYPT_ROUNDS="4", ADMIN_USERNAME=ADMIN[0],
                ADMIN_PASSWORD=ADMIN[1], **GENEROUS_LIMITS)
    full.update(env)
    argv = [sys.executable, "-m", "infra.localstack", "--port", str(port), "--data-dir", str(data_dir), *args]
    return Server("localstack", argv, port, env=full, cwd=REPO, ready=http_ok(f"http://127.0.0.1:{port}/healthz"),
                  timeout=90)


def bucket_folder(data_dir: Path, source: str, username: str) -> Path:
    """Where a job's `source` lives on disk: in the user's space, `bucket/users/<username>/<source>`."""
    return data_dir / "bucket" / "users" / username / source


def register(base: str, username: str, password: str = "a long password") -> dict:
    r = requests.post(f"{base}/register", json={"username": username, "password": password}, timeout=30)
    assert r.status_code == 201, r.text
    return {**r.json(), "password": password}


def admin_key(base: str) -> str:
    r = requests.post(f"{base}/api-key", auth=ADMIN, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["api_key"])
