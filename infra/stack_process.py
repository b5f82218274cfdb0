"""The local stack (`python -m infra.localstack`) as a test or a benchmark drives it: start, stop, kill -9, and
restart on the same data. Its own process group on 127.0.0.1; stopped by that group, never by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import requests

from infra.processes import REPO, free_port

# variables of the test process that must not leak into the stack (it picks its own embedded backends)
BACKEND_VARIABLES = ("STORE_BACKEND", "STORAGE_BACKEND", "QUEUE_BACKEND", "WORKER_URL", "DEAD_LETTER_URL",
                     "SQLITE_PATH", "BUCKET_DIR", "QUEUE_PATH", "INTERNAL_SECRET")


class LocalStack:
    def __init__(self, data_dir: Path, models_dir: Path, port: int | None = None, module: str = "infra.localstack",
                 **env: str) -> None:
        self.data_dir, self.port, self.module = data_dir, port or free_port(), module  # module: what `-m` runs
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in BACKEND_VARIABLES}
        self.env.update(PYTHONPATH=str(REPO), MODELS_DIR=str(models_dir), ADMIN_USERNAME="boss",
                        ADMIN_PASSWORD="boss-password")
        self.env.update(env)
        self.proc: subprocess.Popen[str] | None = None
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = data_dir.parent / f"stack-{self.port}.log"

    def start(self, timeout: float = 60) -> Self:
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--port", str(self.port), "--data-dir", str(self.data_dir)],
                cwd=REPO, env=self.env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not start; see {self.log}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """kill -9 of the stack's whole process group: no cleanup of any kind runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        """Ctrl-C, as a user stops it; its exit code (the group is killed if it does not stop in time)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def admin_key(self) -> str:
        return str(requests.post(self.url + "/api-key", auth=("boss", "boss-password"), timeout=30).json()["api_key"])

    def user(self, name: str, tokens: int) -> dict:
        """A new account with exactly `tokens` tokens."""
        user = requests.post(self.url + "/register", json={"username": name, "password": "a long password"},
                             timeout=30).json()
        if tokens != user["tokens"]:
            r = requests.post(self.url + "/refill", json={"username": name, "amount": tokens - user["tokens"]},
                              headers={"Authorization": f"Bearer {self.admin_key()}"}, timeout=30)
            assert r.status_code == 200, r.text
        return {**user, "headers": {"Authorization": f"Bearer {user['api_key']}"}}

    def job(self, user: dict, job_id: str) -> dict:
        return dict(requests.get(f"{self.url}/jobs/{job_id}", headers=user["headers"], timeout=30).json())

    def wait_job(self, user: dict, job_id: str, timeout: float = 120, every: float = 0.1) -> dict:
        """Poll a job every `every` seconds until it is finished; its last state."""
        deadline = time.monotonic() + timeout
        while (status := self.job(user, job_id))["status"] not in ("done", "failed", "cancelled"):
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} not finished after {timeout}s: {status}")
            time.sleep(every)
        return status

    def balance(self, user: dict) -> int:
        return int(requests.get(self.url + "/tokens", headers=user["headers"], timeout=30).json()["tokens"])
