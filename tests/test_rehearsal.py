"""The cloud rehearsal (`nox -s serve -- --cloud`, infra/rehearsal.py): the deployment's shape on one machine.

One rehearsal for the module, started as `python -m infra.rehearsal` in its own process group: every function
from its own bundle and venv on its own origin, the emulators, push subscriptions with the Terraform's policy,
and two instances of sort_worker behind a round-robin front. The console, served by `web` on its origin, drives
the other functions' origins in Chromium; a job is sorted by the two workers with every image exactly once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra import photos
from infra.processes import Server
from tests.conftest import GENEROUS_LIMITS, REPO
from tests.test_console import browser, drop_files, results, room, shot, sign_up, training_folder, wait, watch
from tests.waiting import wait_for_status, wait_until

ADMIN = ("admin", "rehearsal-admin-password")  # admin_username's default in variables.tf
TIMEOUT = 30_000
__all__ = ["browser"]  # the browser fixture of the console journeys, shared


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("rehearsal")
    ready = data / "ready.json"
    extra = [f"--env={k}={v}" for k, v in {"BCRYPT_ROUNDS": "4", **GENEROUS_LIMITS}.items()]
    argv = [sys.executable, "-m", "infra.rehearsal", "--data-dir", str(data), "--models-dir", str(models_dir),
            "--instances", "sort_worker=2", "--sweep-every", "3", "--ready-file", str(ready), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO), "ADMIN_PASSWORD": ADMIN[1]}
    started = time.monotonic()
    server = Server("rehearsal", argv, 0, env=env, cwd=REPO, ready=ready.exists, timeout=600)
    described = json.loads(ready.read_text())
    described["start_seconds"] = time.monotonic() - started
    yield described
    server.stop()  # SIGTERM: the rehearsal stops its servers; any it could not are stopped here, by their group
    for pgid in described["pgids"]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def admin_refill(cloud: dict[str, Any], username: str, amount: int) -> None:
    r = requests.post(cloud["urls"]["tokens"] + "/refill", auth=ADMIN, json={"username": username, "amount": amount},
                      timeout=60)
    assert r.status_code == 200, r.text


def test_the_rehearsal_runs_each_function_on_its_own_origin(cloud: dict[str, Any]) -> None:
    urls = cloud["urls"]
    assert len(set(urls.values())) == len(urls) == 11
    assert len(cloud["instances"]["sort_worker"]) == 2
    assert cloud["processes"] == 12 + 3 + 1  # the instances, the emulators, the rehearsal itself
    print(f"rehearsal started in {cloud['start_seconds']:.1f} s, {cloud['processes']} processes")
    web = urls["web"]
    config = requests.get(web + "/config.json", timeout=30).json()["endpoints"]
    assert config["register"] == urls["register"] and config["jobs"] == urls["sort_job"]
    for name in ("register", "tokens", "files_api", "classify", "sort_job", "models"):
        r = requests.options(urls[name] + "/x", timeout=30, headers={
            "Origin": web, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
        assert r.status_code == 204 and r.headers.get("Access-Control-Allow-Origin") == web, (name, r.status_code)


@pytest.fixture
def page(browser: Any, cloud: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=False)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    problems: list[str] = []
    page.on("console", lambda m: watch(problems, m))
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.goto(cloud["urls"]["web"] + "/")
    yield page
    context.close()
    assert problems == [], problems


def test_the_console_signs_up_classifies_uploads_sorts_and_trains_across_origins(
        page: Any, cloud: dict[str, Any], tmp_path: Path) -> None:
    username = sign_up(page)
    drop_files(page, "#drop", [("coffee.png", photos.data("coffee.png"), "image/png")])
    assert results(page, 1)[0]["bars"][0]["label"] == "espresso"
    wait(page, "document.getElementById('balance').textContent === '4'")
    admin_refill(cloud, username, 60)
    room(page, "Files")
    page.set_input_files("#folder-input", str(training_folder(tmp_path)))
    wait(page, "document.getElementById('files-status').textContent === 'Upload complete.'")
    room(page, "Sort")
    page.get_by_label("Source folder in your space").fill("pets/cat/")
    page.get_by_label("Classes, separated by commas").fill("food, cat")
    page.get_by_role("button", name="Start sorting").click()
    wait(page, "document.getElementById('job-status').textContent === 'Job done.'", timeout=120)
    counts = dict(page.evaluate("""() => Array.from(document.querySelectorAll('#job-counts tbody tr'),
        (tr) => [tr.cells[0].textContent, Number(tr.cells[1].textContent)])"""))
    assert sum(counts.values()) == 6 and counts["failed"] == 0, counts
    room(page, "Models")
    page.get_by_label("Model name (a-z, 0-9, _ and -)").fill("pets")
    page.get_by_label("Training folder (one subfolder per class)").fill("pets/")
    page.get_by_role("button", name="Train").click()
    wait(page, "document.getElementById('train-progress').value === 100", timeout=240)
    wait(page, "document.getElementById('confusion').naturalWidth > 0")
    wait(page, "document.querySelector('#model option[value=pets]') !== null")  # the list reloads after the metrics
    shot(page, "rehearsal-console")


def small_images(count: int) -> list[tuple[str, bytes]]:
    """`count` distinct small PNGs (crops of two real photos)."""
    from PIL import Image

    out = []
    for i in range(count):
        image = Image.open(io.BytesIO(photos.data(("coffee.png", "chelsea.png")[i % 2]))).convert("RGB")
        box = (i * 4, i * 3, image.width - i * 5, image.height - i * 4)
        buffer = io.BytesIO()
        image.crop(box).resize((96, 96)).save(buffer, "PNG")
        out.append((f"{i}.png", buffer.getvalue()))
    return out


def handled_events(log: str) -> int:
    """sort_worker's one line per event handled ok, in an instance's log."""
    return sum(1 for line in log_lines(log) if line.get("function") == "sort_worker" and line.get("outcome") == "ok")


def test_two_sort_workers_behind_the_push_endpoint_sort_every_image_exactly_once(cloud: dict[str, Any]) -> None:
    urls, count = cloud["urls"], 10
    r = requests.post(urls["register"] + "/register", timeout=60,
                      json={"username": f"two{uuid.uuid4().hex[:8]}", "password": "a long password"})
    assert r.status_code == 201, r.text
    user, headers = r.json(), {"Authorization": f"Bearer {r.json()['api_key']}"}
    admin_refill(cloud, user["username"], count)
    for name, data in small_images(count):
        assert requests.put(f"{urls['files_api']}/files/batch/{name}", data=data, headers=headers,
                            timeout=60).status_code == 201
    r = requests.post(urls["sort_job"] + "/jobs", json={"classes": ["food", "cat"], "source": "batch/"},
                      headers=headers, timeout=60)
    assert r.status_code == 202, r.text
    job = wait_for_status(lambda: requests.get(f"{urls['sort_job']}/jobs/{r.json()['id']}", headers=headers,
                                               timeout=30).json(), ("done", "failed"), 180, interval=0.5)
    assert job["status"] == "done" and job["failed"] == 0
    assert sum(job["matched"].values()) + job["unmatched"] == job["processed"] == count
    listing = requests.get(urls["files_api"] + "/files", headers=headers, timeout=60).json()["files"]
    copies = Counter(f["path"].rsplit("/", 1)[-1] for f in listing if not f["path"].startswith("batch/"))
    assert copies == {name: 1 for name, _ in small_images(count)}, copies
    balance = requests.get(urls["tokens"] + "/tokens", headers=headers, timeout=30).json()["tokens"]
    assert balance == user["tokens"] + count - count  # one token per image, each charged once
    served = [handled_events(i["log"]) for i in cloud["instances"]["sort_worker"]]
    assert all(n > 0 for n in served) and sum(served) >= count, served


def log_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(log).read_text(errors="replace").splitlines() if line.startswith("{")]


def test_bucket_uploads_reach_on_upload_and_the_sweeper_runs_on_its_schedule(cloud: dict[str, Any]) -> None:
    gcs, bucket = cloud["emulators"]["gcs"], "imageclassify-rehearsal"
    r = requests.post(f"{gcs}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=inbox/cup.png",
                      data=photos.data("coffee.png"), headers={"Content-Type": "image/png"}, timeout=60)
    assert r.status_code == 200, r.text
    def labels() -> requests.Response | None:
        found = requests.get(f"{gcs}/storage/v1/b/{bucket}/o/labels%2Finbox%2Fcup.png.json?alt=media", timeout=30)
        return found if found.status_code == 200 else None

    r = wait_until(labels, 60, "no labels from on_upload", interval=0.5)
    assert r.json()["predictions"][0]["label"] == "espresso"
    # started for that upload only: not for the users' uploads, the jobs' copies or the label it wrote (the
    # event's log line is written once the handler has returned, after the label: waited for, not assumed)
    def handled() -> list[dict[str, Any]]:
        return [line for line in log_lines(cloud["instances"]["on_upload"][0]["log"]) if line.get("outcome")]

    wait_until(handled, 30, "on_upload logged no outcome for the upload", interval=0.2)
    assert [line["outcome"] for line in handled()] == ["ok"], handled()
    sweeper = cloud["instances"]["sweeper"][0]["log"]
    wait_until(lambda: any(line.get("function") == "sweeper" and line.get("httpRequest", {}).get("status") == 200
                           for line in log_lines(sweeper)), 60, "the scheduler never called the sweeper", interval=0.5)
