"""Run a bundle the way the cloud does: a fresh virtual environment with only its requirements.

Used by the bundle isolation tests and by `nox -s bench` (installed size and
cold start: process start to first answered request).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from common.adapters.eventpost import EVENT_TYPE, binary_event
from common.jobs.events import GCS_FINALIZED
from infra import photos
from infra.processes import Server, free_port
from infra.targets import REPO, TARGETS

VENVS = Path(os.environ.get("BUNDLE_VENVS", REPO / ".data" / "venvs"))
SMOKE_ENV = {"BCRYPT_ROUNDS": "4", "ADMIN_USERNAME": "root", "ADMIN_PASSWORD": "root-password"}


def venv_for(requirements: Path) -> Path:
    """A virtual environment with exactly these requirements, reused while they do not change."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = VENVS / digest
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True)
        (venv / ".complete").write_text("ok")
    return venv


def installed(venv: Path) -> set[str]:
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json",
                          "--disable-pip-version-check"], capture_output=True, text=True, check=True)
    return {p["name"].lower().replace("_", "-") for p in json.loads(out.stdout)}


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def start(target: str, bundle: Path, venv: Path, env: dict[str, str],
          send: Callable[[str], requests.Response]) -> tuple[Server, requests.Response, float]:
    """Start the bundle under functions-framework from its own folder and send it one request:
    the server, the answer, and the cold start (process start to answered request, in seconds)."""
    started = time.perf_counter()
    server = serve(target, bundle, venv, env)
    answer = send(server.url)
    return server, answer, time.perf_counter() - started


def serve(target: str, bundle: Path, venv: Path, env: dict[str, str], port: int | None = None,
          name: str | None = None) -> Server:
    """The bundle under its venv's functions-framework, from its own folder (the repository not on sys.path)."""
    port = port or free_port()
    argv = [str(venv / "bin" / "functions-framework"), "--source", str(bundle / "main.py"), "--target", target,
            "--host", "127.0.0.1", "--port", str(port)]
    if TARGETS[target].signature == "cloudevent":
        argv += ["--signature-type", "cloudevent"]
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    return Server(name or f"bundle-{target}", argv, port, env={**clean, "MODELS_DIR": "models", **env}, cwd=bundle)


def smoke_request(target: str, data_dir: Path) -> Callable[[str], requests.Response]:
    """One real request that each target must answer with a 2xx, as its bundle's smoke test."""
    root = ("root", "root-password")
    coffee = photos.data("coffee.png")
    if target == "on_upload":
        (data_dir / "bucket" / "inbox").mkdir(parents=True, exist_ok=True)
        (data_dir / "bucket" / "inbox" / "c.png").write_bytes(coffee)

    def event(data: dict[str, str], event_type: str = EVENT_TYPE) -> Callable[[str], requests.Response]:
        headers, body = binary_event(data, event_type)
        return lambda url: requests.post(url, data=body, headers=headers, timeout=60)

    requests_by_target: dict[str, Callable[[str], requests.Response]] = {
        "register": lambda url: requests.post(url + "/register", json={"username": "bundle-user",
                                                                       "password": "password1"}, timeout=60),
        "tokens": lambda url: requests.get(url + "/tokens", auth=root, timeout=60),
        "files_api": lambda url: requests.put(url + "/files/a/c.png", data=coffee, auth=root, timeout=60),
        "classify": lambda url: requests.post(url + "/classify", json={"image": base64.b64encode(coffee).decode()},
                                              auth=root, timeout=60),
        "web": lambda url: requests.get(url + "/", timeout=60),
        "models": lambda url: requests.get(url + "/models", auth=root, timeout=60),
        "sort_job": lambda url: requests.post(url + "/jobs", json={"classes": ["food"], "source": "empty/"},
                                              auth=root, timeout=60),
        "sweeper": lambda url: requests.post(url + "/_sweep", timeout=60),
        "sort_worker": event({"job_id": "no-such-job", "object": "users/x/all/x.png"}),
        "sort_dead_letter": event({"job_id": "no-such-job", "object": "users/x/all/x.png"}),
        "on_upload": event({"bucket": "imageclassify-local", "name": "inbox/c.png"}, GCS_FINALIZED),
    }
    return requests_by_target[target]
