"""Any one target runs on its own, as the cloud runs it: `functions-framework --target T --source functions/F/main.py`.

No PYTHONPATH and another working directory: each function folder links `common/` beside its main.py, so the
documented command works for a new user from anywhere (and a bundle carries a real copy of it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import requests

from common.adapters.eventpost import binary_event
from infra import processes
from infra.targets import TARGETS
from tests.conftest import GENEROUS_LIMITS


def start_alone(target: str, tmp_path: Path) -> processes.Server:
    binary = shutil.which("functions-framework") or str(Path(sys.executable).parent / "functions-framework")
    port = processes.free_port()
    t = TARGETS[target]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DATA_DIR=str(tmp_path / "data"), BCRYPT_ROUNDS="4", **GENEROUS_LIMITS)
    argv = [binary, "--target", t.name, "--source", str(t.source), "--signature-type", t.signature,
            "--host", "127.0.0.1", "--port", str(port)]
    return processes.Server(f"alone-{target}", argv, port, env=env, cwd=tmp_path)


def test_every_function_folder_links_common() -> None:
    for t in TARGETS.values():
        link = t.source.parent / "common"
        assert link.is_symlink() and link.resolve() == (processes.REPO / "common").resolve(), link


def test_an_http_target_alone(tmp_path: Path) -> None:
    server = start_alone("register", tmp_path)
    try:
        r = requests.post(server.url + "/register", json={"username": "alone", "password": "password123"})
        assert r.status_code == 201 and r.json()["tokens"] == 5
    finally:
        server.stop()


def test_a_cloudevent_target_alone(tmp_path: Path) -> None:
    server = start_alone("sort_dead_letter", tmp_path)
    try:
        headers, body = binary_event({"job_id": "nope", "object": "users/x/y.png"})
        assert requests.post(server.url, data=body, headers=headers).status_code == 200
    finally:
        server.stop()
