"""Sort jobs and upload triggers end to end, on each backend set, with the functions under functions-framework.

- local: SQLite + bucket folder + local HTTP queue (+ the local watcher for uploads)
- gcp:   Firestore emulator + fake-gcs-server + Pub/Sub emulator push subscriptions
- aws:   Firestore emulator + moto S3 + moto SQS through the SQS relay
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra import photos
from infra import processes as servers
from tests.conftest import PROJECT, Api, bearer, make_api, new_bucket, signed
from tests.waiting import wait_for_status, wait_until

PLAN = {"coffee.png": 8, "chelsea.png": 8, "grace_hopper.jpg": 8, "camera.png": 6}
CLASSES = ["food", "cat", "clothing"]
EXPECTED = {"food": 8, "cat": 8, "clothing": 8}


class Backend:
    """One backend set: the functions, the bucket, and a way to read it."""

    def __init__(self, name: str, api: Api, client: Any) -> None:
        self.name, self.api, self.client = name, api, client
        self.stops: list[threading.Event] = []

    def put(self, key: str, data: bytes) -> None:
        self.client.write(key, data)

    def put_in(self, user: dict, path: str, data: bytes) -> None:
        """A file in the user's space, as if uploaded there."""
        self.put(f"users/{user['username']}/{path}", data)

    def keys_in(self, user: dict, prefix: str) -> list[str]:
        """Keys under a folder of the user's space, relative to the space."""
        space = f"users/{user['username']}/"
        return [k[len(space):] for k in self.keys(space + prefix)]

    def keys(self, prefix: str) -> list[str]:
        from common.adapters.storage.port import list_all

        return sorted(list_all(self.client, prefix))

    def read(self, key: str) -> bytes:
        return bytes(self.client.read(key, 50 * 1024 * 1024))


def storage_client(env: dict[str, str]) -> Any:
    """A client of the bucket, made with the backend's variables set only while it is created."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        if env["STORAGE_BACKEND"] == "gcs":
            from common.adapters.storage.gcs import GcsStorage

            return GcsStorage(env["BUCKET"], PROJECT)
        if env["STORAGE_BACKEND"] == "s3":
            from common.adapters.storage.s3 import S3Storage

            return S3Storage(env["BUCKET"])
        from common.adapters.storage.local import LocalStorage

        return LocalStorage(Path(env["BUCKET_DIR"]), env["BUCKET"])


def pubsub_subscribe(pubsub: servers.Server, project: str, topic: str, endpoint: str) -> None:
    base = f"{pubsub.url}/v1/projects/{project}"
    requests.put(f"{base}/topics/{topic}", json={}, timeout=10)
    dead = f"{topic}-dead-letter"
    requests.put(f"{base}/topics/{dead}", json={}, timeout=10)
    body = {"topic": f"projects/{project}/topics/{topic}", "pushConfig": {"pushEndpoint": endpoint},
            "ackDeadlineSeconds": 30,
            "deadLetterPolicy": {"deadLetterTopic": f"projects/{project}/topics/{dead}", "maxDeliveryAttempts": 100}}
    r = requests.put(f"{base}/subscriptions/{topic}-push-{uuid.uuid4().hex[:6]}", json=body, timeout=10)
    assert r.status_code == 200, r.text


def sqs_queue(moto: servers.Server, name: str) -> tuple[Any, str]:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "5",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})["QueueUrl"]
    return sqs, url


@pytest.fixture(scope="module", params=["local", "gcp", "aws"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            models_dir: Path) -> Iterator[Backend]:
    from common.adapters.queue import sqs_relay

    name = str(request.param)
    store = "sqlite" if name == "local" else "firestore"
    tmp = tmp_path_factory.mktemp(f"sort-{name}")
    bucket_env = new_bucket({"local": "local", "gcp": "gcs", "aws": "s3"}[name], request, tmp)
    # deliveries keep being retried while a test restarts the worker (however slow the machine), never dead letters
    api = make_api(request, tmp_path_factory, store, MODELS_DIR=str(models_dir), WATCH_PREFIX="inbox/",
                   AUTOSORT_CLASSES="food,cat", QUEUE_MAX_ATTEMPTS="1000", **bucket_env)
    backend = Backend(name, api, storage_client(bucket_env))
    if name == "local":
        api.env.update(WORKER_URL=api.url("sort_worker", "/"), DEAD_LETTER_URL=api.url("sort_dead_letter", "/"))
        api.restart("sort_worker")  # started before the URLs were known: now with them
        stop = threading.Event()
        from infra.watcher import watch

        threading.Thread(target=watch, args=(Path(bucket_env["BUCKET_DIR"]), "inbox/", bucket_env["BUCKET"],
                                             api.url("on_upload", "/"), stop, 0.2), daemon=True).start()
        backend.stops.append(stop)
    elif name == "gcp":
        pubsub = request.getfixturevalue("pubsub_server")
        topic = f"sort-{uuid.uuid4().hex[:8]}"
        project = api.env["GOOGLE_CLOUD_PROJECT"]
        api.env.update(QUEUE_BACKEND="pubsub", PUBSUB_TOPIC=topic, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{pubsub.port}")
        pubsub_subscribe(pubsub, project, topic, api.url("sort_worker", "/"))
        # fake-gcs publishes every finalize event of every bucket to one topic of the test project
        pubsub_subscribe(pubsub, PROJECT, "bucket-uploads", api.url("on_upload", "/"))
    else:
        moto = request.getfixturevalue("moto_server")
        sqs, jobs_url = sqs_queue(moto, f"sort-{uuid.uuid4().hex[:8]}")
        _, uploads_url = sqs_queue(moto, f"uploads-{uuid.uuid4().hex[:8]}")
        arn = sqs.get_queue_attributes(QueueUrl=uploads_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        backend.client.client.put_bucket_notification_configuration(
            Bucket=bucket_env["BUCKET"], NotificationConfiguration={"QueueConfigurations": [
                {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        api.env.update(QUEUE_BACKEND="sqs", SQS_QUEUE_URL=jobs_url)
        for url, target in ((jobs_url, api.url("sort_worker", "/")), (uploads_url, api.url("on_upload", "/"))):
            stop = threading.Event()
            threading.Thread(target=sqs_relay.run, args=(url, target, stop, 1, "", sqs), daemon=True).start()
            backend.stops.append(stop)
    api.url("sort_job")
    yield backend
    for stop in backend.stops:
        stop.set()
    api.stop()


def upload_photos(backend: Backend, user: dict, folder: str) -> int:
    count = 0
    for name, copies in PLAN.items():
        for i in range(copies):
            backend.put_in(user, f"{folder}/{i}-{name}", photos.data(name))
            count += 1
    backend.put_in(user, f"{folder}/notes.txt", b"these are not the images you are looking for")
    return count + 1


def job_of(backend: Backend, job_id: str, user: dict) -> dict:
    r = requests.get(backend.api.url("sort_job", f"/jobs/{job_id}"), headers=bearer(user))
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_done(backend: Backend, job_id: str, user: dict, timeout: float = 120) -> dict:
    return wait_for_status(lambda: job_of(backend, job_id, user), ("done", "failed"), timeout)


def test_job_sorts_a_folder(backend: Backend) -> None:
    folder = f"all-{uuid.uuid4().hex[:6]}"
    user = backend.api.user_with(40)
    total = upload_photos(backend, user, folder)
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                      json={"classes": CLASSES, "source": f"{folder}/"})
    assert r.status_code == 202, r.text
    assert r.json()["total"] == total and r.json()["classes"] == CLASSES and "ended" not in r.json()
    job = wait_done(backend, r.json()["id"], user)
    assert job["status"] == "done", job
    assert job["created"] <= job["ended"] <= time.time()  # when it finished, from the server's record
    assert job["matched"] == EXPECTED and job["unmatched"] == 6 and job["failed"] == 1
    assert job["processed"] == total == sum(job["matched"].values()) + job["unmatched"] + job["failed"]
    assert job["percentage"] == 100.0
    assert backend.api.balance(user["api_key"]) == 40 - (total - 1)
    for cls, photo in (("food", "coffee.png"), ("cat", "chelsea.png"), ("clothing", "grace_hopper.jpg")):
        keys = [k for k in backend.keys_in(user, f"{cls}/") if k.endswith(photo)]
        assert len(keys) == PLAN[photo], (cls, keys)
    assert len([k for k in backend.keys_in(user, "unmatched/") if k.endswith("camera.png")]) == 6


def test_seed_style_job_paths(backend: Backend) -> None:
    folder = f"seed-{uuid.uuid4().hex[:6]}"
    user = backend.api.user_with(5)
    backend.put_in(user, f"{folder}/a.png", photos.data("coffee.png"))
    r = requests.post(backend.api.url("sort_job", "/classification-job"), headers=bearer(user),
                      json={"classes": ["food"], "source": folder})
    assert r.status_code == 202, r.text
    body = wait_done(backend, r.json()["id"], user)
    seed = requests.get(backend.api.url("sort_job", f"/classification-job/{r.json()['id']}"), headers=bearer(user))
    assert seed.json()["status"] == body["status"] == "done" and body["matched"] == {"food": 1}


def test_redelivered_message_changes_nothing(backend: Backend) -> None:
    folder = f"redeliver-{uuid.uuid4().hex[:6]}"
    user = backend.api.user_with(5)
    backend.put_in(user, f"{folder}/x.png", photos.data("chelsea.png"))
    job_id = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                           json={"classes": ["cat"], "source": folder}).json()["id"]
    before = wait_done(backend, job_id, user)
    message = {"job_id": job_id, "object": f"users/{user['username']}/{folder}/x.png"}
    from common.adapters.eventpost import post_event

    for _ in range(2):
        assert post_event(backend.api.url("sort_worker", "/"), signed(message)) == 200
    after = wait_done(backend, job_id, user)
    assert after == before and after["matched"] == {"cat": 1} and after["processed"] == 1
    assert backend.api.balance(user["api_key"]) == 4


def test_upload_gets_labels(backend: Backend) -> None:
    key = f"inbox/{uuid.uuid4().hex[:6]}/my photo+1.png"
    time.sleep(0.5)  # the local watcher takes its first snapshot
    backend.put(key, photos.data("coffee.png"))
    wait_until(lambda: f"labels/{key}.json" in backend.keys("labels/"), 60, "no labels from the upload trigger")
    labels = json.loads(backend.read(f"labels/{key}.json"))
    assert labels["predictions"][0]["label"] == "espresso" and labels["class"] == "food"
    assert f"food/{key[len('inbox/'):]}" in backend.keys("food/")
    assert not [k for k in backend.keys("labels/") if k.startswith("labels/labels/")]  # outputs never re-trigger


def test_upload_autosort_never_replaces_a_different_file(backend: Backend) -> None:
    """The upload trigger's autosort copies to `<class>/<path>`: a different file already there stays, and the
    labels say why the copy was not made."""
    name = f"{uuid.uuid4().hex[:6]}/photo.png"
    backend.put(f"food/{name}", b"someone else's file")
    time.sleep(0.5)  # the local watcher takes its first snapshot
    backend.put(f"inbox/{name}", photos.data("coffee.png"))
    wait_until(lambda: f"labels/inbox/{name}.json" in backend.keys("labels/"), 60, "no labels from the upload trigger")
    labels = json.loads(backend.read(f"labels/inbox/{name}.json"))
    assert labels["class"] == "food" and labels["sort_error"]["code"] == "output_taken", labels
    assert backend.read(f"food/{name}") == b"someone else's file"


@pytest.mark.parametrize("body, status, code", [
    ({"classes": ["dgo"], "source": "all/"}, 400, "unknown_class"),
    ({"classes": ["../etc"], "source": "all/"}, 400, "invalid_class"),
    ({"classes": ["a/b"], "source": "all/"}, 400, "invalid_class"),
    ({"classes": ["x" * 65], "source": "all/"}, 400, "invalid_class"),
    ({"classes": [f"c{i}" for i in range(21)], "source": "all/"}, 400, "invalid_classes"),
    ({"classes": [], "source": "all/"}, 400, "invalid_classes"),
    ({"classes": "dog", "source": "all/"}, 400, "invalid_classes"),
    ({"classes": [""], "source": "all/"}, 400, "invalid_class"),
    ({"classes": ["dog", "Dog"], "source": "all/"}, 400, "invalid_classes"),
    ({"classes": ["dog"], "source": ""}, 400, "invalid_source"),
    ({"classes": ["dog"], "source": "../"}, 400, "invalid_source"),
    ({"classes": ["dog"], "source": 5}, 400, "invalid_source"),
    ({"classes": ["dog"], "source": "all/", "min_score": 3}, 400, "invalid_min_score"),
])
def test_bad_jobs(backend: Backend, body: dict, status: int, code: str) -> None:
    user = backend.api.user_with(5)
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user), json=body)
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    assert backend.api.balance(user["api_key"]) == 5


def test_empty_source_is_done_at_once_and_short_balance_is_402(backend: Backend) -> None:
    user = backend.api.user_with(5)
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                      json={"classes": ["dog"], "source": f"nothing-{uuid.uuid4().hex[:6]}/"})
    assert r.status_code == 202 and r.json()["status"] == "done" and r.json()["total"] == 0
    assert r.json()["ended"] == r.json()["created"]  # nothing to sort: ended as it was made
    folder = f"many-{uuid.uuid4().hex[:6]}"
    for i in range(6):
        backend.put_in(user, f"{folder}/{i}.png", photos.data("coffee.png"))
    short = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                          json={"classes": ["food"], "source": folder})
    assert short.status_code == 402 and short.json()["error"]["needed"] == 6
    assert backend.api.balance(user["api_key"]) == 5 and not backend.keys_in(user, "food/" + folder)


def test_jobs_are_private(backend: Backend) -> None:
    owner, other = backend.api.user_with(5), backend.api.user_with(5)
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(owner),
                      json={"classes": ["dog"], "source": f"nothing-{uuid.uuid4().hex[:6]}/"})
    job_url = backend.api.url("sort_job", f"/jobs/{r.json()['id']}")
    assert requests.get(job_url, headers=bearer(other)).status_code == 404
    assert requests.get(job_url).status_code == 401
    assert requests.get(backend.api.url("sort_job", "/jobs/doesnotexist"), headers=bearer(owner)).status_code == 404
    assert requests.get(backend.api.url("sort_job", "/jobs/..%2F..%2Fetc"), headers=bearer(owner)).status_code == 404
    assert requests.get(job_url, auth=("root", "root-password")).status_code == 404  # not even an admin's


def test_worker_killed_mid_job(backend: Backend) -> None:
    folder = f"kill-{uuid.uuid4().hex[:6]}"
    user = backend.api.user_with(30)
    for i in range(30):
        backend.put_in(user, f"{folder}/{i}.png", photos.data("coffee.png" if i % 2 else "chelsea.png"))
    job_id = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                           json={"classes": ["food", "cat"], "source": folder}).json()["id"]
    with contextlib.suppress(AssertionError):  # kill mid-job: after a few images, or wherever it is after 30 s
        wait_until(lambda: job_of(backend, job_id, user)["processed"] >= 3, 30, interval=0.05)
    backend.api.restart("sort_worker")
    job = wait_done(backend, job_id, user, 120)
    assert job["status"] == "done" and job["matched"] == {"food": 15, "cat": 15} and job["processed"] == 30
    # the class folders hold the objects by their path in the space
    assert {f"food/{folder}/{i}.png" for i in range(1, 30, 2)} == set(backend.keys_in(user, "food/"))


def test_spaces_are_private(backend: Backend) -> None:
    """A user's uri, job source and job outputs stay in their own space; another's answers 404."""
    owner, other = backend.api.user_with(5), backend.api.user_with(5)
    backend.put_in(owner, "mine/a.png", photos.data("coffee.png"))
    storage = backend.client
    own_uri = f"{storage.scheme}://{storage.bucket}/users/{owner['username']}/mine/a.png"
    classify = backend.api.url("classify", "/classify")
    r = requests.post(classify, headers=bearer(owner), json={"uri": own_uri})
    assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "espresso", r.text
    for uri in (own_uri, f"{storage.scheme}://{storage.bucket}/mine/a.png",
                f"{storage.scheme}://{storage.bucket}/users/{other['username']}/../{owner['username']}/mine/a.png"):
        r = requests.post(classify, headers=bearer(other), json={"uri": uri})
        assert r.status_code in (400, 404) and r.json()["error"]["code"] in ("unknown_object", "invalid_path"), r.text
    job = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(other),
                        json={"classes": ["food"], "source": "mine/"}).json()
    assert job["total"] == 0  # the other user's own (empty) mine/, never the owner's
    assert backend.api.balance(other["api_key"]) == 5 and backend.api.balance(owner["api_key"]) == 4


def test_cancel_refunds_what_is_left(backend: Backend) -> None:
    folder = f"cancel-{uuid.uuid4().hex[:6]}"
    user = backend.api.user_with(20)
    for i in range(20):
        backend.put_in(user, f"{folder}/{i}.png", photos.data("coffee.png"))
    handled = backend.api.events_handled("sort_worker")
    job_id = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                           json={"classes": ["food"], "source": folder}).json()["id"]
    r = requests.delete(backend.api.url("sort_job", f"/jobs/{job_id}"), headers=bearer(user))
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    # every message of the job is delivered (the worker logs each), and those after the cancel changed nothing
    wait_until(lambda: backend.api.events_handled("sort_worker") >= handled + 20, 120, "messages still queued")
    after = requests.get(backend.api.url("sort_job", f"/jobs/{job_id}"), headers=bearer(user)).json()
    assert after["status"] == "cancelled" and after["processed"] == r.json()["processed"]
    assert backend.api.balance(user["api_key"]) == 20 - after["processed"]
    # the images classified before the cancel are copied still
    wait_until(lambda: len(backend.keys_in(user, "food/")) >= after["processed"], 30, "the copies never arrived")
    assert len(backend.keys_in(user, "food/")) == after["processed"]
    other = backend.api.user_with(5)
    assert requests.delete(backend.api.url("sort_job", f"/jobs/{job_id}"), headers=bearer(other)).status_code == 404


def test_forged_messages_change_nothing(backend: Backend) -> None:
    folder = f"forged-{uuid.uuid4().hex[:6]}"
    user = backend.api.user_with(5)
    backend.put_in(user, f"{folder}/x.png", photos.data("chelsea.png"))
    job_id = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                           json={"classes": ["cat"], "source": folder}).json()["id"]
    before = wait_done(backend, job_id, user)
    from common.adapters.eventpost import post_event

    worker, dead = backend.api.url("sort_worker", "/"), backend.api.url("sort_dead_letter", "/")
    for i in range(5):  # unsigned, wrongly signed, and signed but outside the job's source
        key = f"users/{user['username']}/{folder}/made-up-{i}.png"
        for url in (worker, dead):
            assert post_event(url, {"job_id": job_id, "object": key}) == 200
            assert post_event(url, {"job_id": job_id, "object": key, "sig": "0" * 64}) == 200
            assert post_event(url, signed({"job_id": job_id, "object": f"users/someone/{folder}/x.png"})) == 200
    after = wait_done(backend, job_id, user)
    assert after == before and after["processed"] == 1
    assert backend.api.balance(user["api_key"]) == 4


def test_an_output_that_cannot_be_written_is_charged_and_reported(backend: Backend) -> None:
    """The user left a folder where an output goes (`unmatched/<folder>/a.png/`): a bucket holds both, a disk
    cannot. The image was classified: charged, counted `not_written`, the user's folder left as it was."""
    folder = f"blocked-{uuid.uuid4().hex[:6]}"
    user = backend.api.user_with(5)
    if backend.name == "local":  # an earlier test's SIGKILL may have left a half-made copy there: count only ours
        temporary = Path(backend.api.env["BUCKET_DIR"]) / ".tmp"
        before = set(temporary.iterdir())
    backend.put_in(user, f"{folder}/a.png", photos.data("camera.png"))
    backend.put_in(user, f"unmatched/{folder}/a.png/blocker.png", photos.data("coffee.png"))
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                      json={"classes": ["food"], "source": folder, "min_score": 0.99})
    assert r.status_code == 202, r.text
    job = wait_done(backend, r.json()["id"], user)
    assert (job["status"], job["unmatched"], job["failed"]) == ("done", 1, 0), job
    assert backend.api.balance(user["api_key"]) == 4  # before: refunded, so a blocked answer was free
    assert job["not_written"] == (1 if backend.name == "local" else 0), job
    assert backend.read(f"users/{user['username']}/unmatched/{folder}/a.png/blocker.png") == \
        photos.data("coffee.png")
    if backend.name == "local":
        assert set(temporary.iterdir()) <= before  # the failed copies left no temporary file


def test_two_jobs_never_overwrite_each_others_outputs(backend: Backend) -> None:
    """`day1/photo.png` and `day2/photo.png`, sorted by two jobs at once: before, both went to `cat/photo.png`
    (two tokens, one file). Now each keeps its path: `cat/day1/photo.png`, `cat/day2/photo.png`."""
    user, tag = backend.api.user_with(5), uuid.uuid4().hex[:6]
    first, second = photos.data("chelsea.png"), photos.data("chelsea.png") + b"\0"  # two different files
    backend.put_in(user, f"d1-{tag}/photo.png", first)
    backend.put_in(user, f"d2-{tag}/photo.png", second)
    ids = [requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user), timeout=30,
                         json={"classes": ["cat"], "source": f"d{n}-{tag}/"}).json()["id"] for n in (1, 2)]
    for job_id in ids:
        assert wait_done(backend, job_id, user)["matched"] == {"cat": 1}
    assert backend.read(f"users/{user['username']}/cat/d1-{tag}/photo.png") == first
    assert backend.read(f"users/{user['username']}/cat/d2-{tag}/photo.png") == second
    assert backend.api.balance(user["api_key"]) == 3


def test_a_file_named_like_a_class_folder_refuses_the_job(backend: Backend) -> None:
    """`PUT /files/cat` then a job into `cat`: before, every image was refunded with path_conflict (free answers);
    now the job is refused up front, nothing charged, and a file put later is never replaced."""
    user, tag = backend.api.user_with(5), uuid.uuid4().hex[:6]
    backend.put_in(user, f"s-{tag}/a.png", photos.data("chelsea.png"))
    backend.put_in(user, "cat", photos.data("coffee.png"))  # as `PUT /files/cat` leaves it
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user), timeout=30,
                      json={"classes": ["food", "cat"], "source": f"s-{tag}/"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "output_folder_taken", r.text
    assert "'cat'" in r.json()["error"]["message"]
    backend.client.delete(f"users/{user['username']}/cat")
    backend.put_in(user, f"cat/s-{tag}", b"not a folder")  # a file where the folder on the way would be
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user), timeout=30,
                      json={"classes": ["cat"], "source": f"s-{tag}/"})
    assert r.status_code == 409 and f"'cat/s-{tag}'" in r.json()["error"]["message"], r.text
    assert backend.api.balance(user["api_key"]) == 5
