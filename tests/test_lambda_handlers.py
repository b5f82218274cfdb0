"""The Lambda handlers (common/http/lambda_handlers.py) answer the official sample events (tests/data/aws, from
aws-lambda-go's events/testdata) in process, against moto_server's SSM, DynamoDB and S3: a function-URL
registration and a multipart image upload (base64 body), SQS batches with partial failures, S3 notifications
through SQS (and the s3:TestEvent), and the EventBridge sweep.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from infra import photos
from infra.targets import TARGETS
from tests.conftest import REPO, configure, new_bucket, new_table

DATA = REPO / "tests" / "data" / "aws"
PASSWORD = "admin password from SSM"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def url_event(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The function-URL sample with this request in it (a binary body, base64-encoded as Lambda sends it)."""
    event = sample("lambda-urls-request.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event.update(rawQueryString="", cookies=[], headers={k.lower(): v for k, v in (headers or {}).items()},
                 body=base64.b64encode(body).decode(), isBase64Encoded=True)
    del event["queryStringParameters"]
    return event


def sqs_event(*bodies: str) -> dict[str, Any]:
    """The SQS sample with one record per body (message ids m0, m1, ...)."""
    record = sample("sqs-event.json")["Records"][0]
    return {"Records": [{**copy.deepcopy(record), "messageId": f"m{i}", "body": b} for i, b in enumerate(bodies)]}


@pytest.fixture
def aws(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> Any:
    """A Lambda-like environment on moto_server: DynamoDB table, S3 bucket, the admin password in SSM."""
    import boto3

    moto = request.getfixturevalue("moto_server")
    env = {**new_table(moto), **new_bucket("s3", request, tmp_path), "STORE_BACKEND": "dynamodb",
           "MODELS_DIR": str(models_dir), "DATA_DIR": str(tmp_path / "data"), "TRUSTED_PROXIES": "0",
           "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD_PARAMETER": f"/{tmp_path.name}/admin-password",
           "WATCH_PREFIX": "inbox/", "LABELS_PREFIX": "labels/"}
    ssm = boto3.client("ssm", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    ssm.put_parameter(Name=env["ADMIN_PASSWORD_PARAMETER"], Value=PASSWORD, Type="SecureString")
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    configure(monkeypatch, **env)
    return env


def handler(name: str) -> Any:
    """What a bundle's lambda_main.py builds for this target (infra/bundles.py writes the same call)."""
    from common.http.lambda_handlers import make_handler

    target = TARGETS[name]
    return make_handler(name, str(target.source), target.signature, target.trigger)


def test_secrets_come_from_ssm_at_cold_start(aws: dict[str, str]) -> None:
    import os

    from common.http.lambda_handlers import load_secrets

    assert load_secrets() == ["ADMIN_PASSWORD"]
    assert os.environ["ADMIN_PASSWORD"] == PASSWORD


def test_a_multipart_image_upload_through_a_function_url(aws: dict[str, str]) -> None:
    register, classify = handler("register"), handler("classify")
    reply = register(url_event("POST", "/register", json.dumps({"username": "ann", "password": "a long secret"})
                               .encode(), {"Content-Type": "application/json"}), None)
    assert reply["statusCode"] == 201, reply
    api_key = json.loads(reply["body"])["api_key"]
    form = requests.Request("POST", "http://lambda/classify", headers={"Authorization": f"Bearer {api_key}"},
                            files={"image": ("coffee.png", photos.data("coffee.png"), "image/png")},
                            data={"top_k": "2"}).prepare()
    assert isinstance(form.body, bytes)
    reply = classify(url_event("POST", "/classify", form.body, dict(form.headers)), None)
    assert reply["statusCode"] == 200, reply
    body = json.loads(reply["body"])
    assert body["predictions"][0]["label"] == "espresso" and len(body["predictions"]) == 2
    assert reply["headers"]["content-type"].startswith("application/json")
    missing = classify(url_event("POST", "/classify", b"", {"Authorization": f"Bearer {api_key}"}), None)
    assert missing["statusCode"] == 400 and json.loads(missing["body"])["error"]["message"]


def test_a_sqs_batch_reports_only_the_failed_messages(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from common.jobs import worker

    handled: list[Any] = []

    def handle(message: Any, *_: Any) -> None:
        if message == {"fail": True}:
            raise ConnectionError("a transient failure: the queue must deliver this message again")
        handled.append(message)

    monkeypatch.setattr(worker, "handle", handle)
    reply = handler("sort_worker")(sqs_event(json.dumps({"n": 1}), json.dumps({"fail": True}),
                                             sample("sqs-event.json")["Records"][0]["body"]), None)
    assert reply == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert {"n": 1} in handled


def test_the_dead_letter_handler_takes_the_redrive_queue(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from common.jobs import worker

    dead: list[Any] = []
    monkeypatch.setattr(worker, "handle_dead_letter", lambda message, *_: dead.append(message))
    assert handler("sort_dead_letter")(sqs_event(json.dumps({"job": "j1"})), None) == {"batchItemFailures": []}
    assert dead == [{"job": "j1"}]


def test_s3_notifications_through_sqs_label_the_upload(aws: dict[str, str]) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.put_object(Bucket=aws["BUCKET"], Key="inbox/my coffee.png", Body=photos.data("coffee.png"))
    notification = sample("s3-event.json")
    notification["Records"][0]["s3"]["bucket"]["name"] = aws["BUCKET"]
    notification["Records"][0]["s3"]["object"]["key"] = "inbox/my+coffee.png"  # S3 URL-encodes keys
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00.000Z",
                  "Bucket": aws["BUCKET"], "RequestId": "r", "HostId": "h"}
    reply = handler("on_upload")(sqs_event(json.dumps(test_event), json.dumps(notification)), None)
    assert reply == {"batchItemFailures": []}
    labels = json.loads(s3.get_object(Bucket=aws["BUCKET"], Key="labels/inbox/my coffee.png.json")["Body"].read())
    assert labels["object"] == "inbox/my coffee.png" and labels["predictions"][0]["label"] == "espresso"


def test_the_schedule_runs_one_sweep(aws: dict[str, str]) -> None:
    scheduled = {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                 "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweeper"], "detail": {}}
    assert isinstance(handler("sweeper")(scheduled, None), dict)


def test_every_target_has_a_lambda_shim() -> None:
    from common.http.lambda_handlers import shim

    for name, target in TARGETS.items():
        source = shim(name, target.signature, target.trigger)
        compile(source, "lambda_main.py", "exec")
        assert f"{name!r}" in source and "handler = make_handler(" in source


@pytest.mark.slow
def test_a_lambda_zip_runs_alone(tmp_path: Path, models_dir: Path) -> None:
    """build/lambda/<target>.zip: lambda_main.py at its root, linux packages inside, under the 250 MB, and a fresh
    process with only the bundle on its path answers one function-URL event (the cold start nox -s bundles reports)."""
    import zipfile

    from infra import bundles, lambda_bundles

    bundle = bundles.build("register", tmp_path, models_dir)
    dest = lambda_bundles.build("register", bundle, tmp_path)
    with zipfile.ZipFile(tmp_path / "lambda" / "register.zip") as zf:
        names = set(zf.namelist())
    assert {"lambda_main.py", "main.py", "apig_wsgi/__init__.py", "common/http/lambda_handlers.py"} <= names
    assert not any(name.startswith(("google/cloud/firestore", "google/cloud/storage")) for name in names)
    assert lambda_bundles.sizes("register", tmp_path)[1] < lambda_bundles.LIMIT_MB
    (tmp_path / "data").mkdir()
    seconds, reply = lambda_bundles.cold_start("register", dest, tmp_path / "data")
    assert reply["statusCode"] == 201, reply
    assert seconds < 60


def big_png(min_bytes: int) -> bytes:
    """A PNG of noise (it does not compress) of at least `min_bytes`."""
    import io
    import os

    from PIL import Image

    side = int((min_bytes / 3) ** 0.5) + 16
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    assert out.tell() >= min_bytes
    return out.getvalue()


def test_an_image_larger_than_a_function_url_takes_is_classified_from_the_bucket(
        aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda's MAX_BODY_BYTES (infra/terraform-aws/environment.tf) caps request bodies, not images in the bucket:
    an image over it, put in the caller's space straight into S3, is classified by its `uri`."""
    import boto3

    from tests.conftest import configure

    configure(monkeypatch, MAX_BODY_BYTES="4194304")
    register, classify = handler("register"), handler("classify")
    reply = register(url_event("POST", "/register", json.dumps({"username": "bea", "password": "a long secret"})
                               .encode(), {"Content-Type": "application/json"}), None)
    api_key = json.loads(reply["body"])["api_key"]
    s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    image = big_png(5 * 1024 * 1024)
    direct = classify(url_event("POST", "/classify", image, {"Authorization": f"Bearer {api_key}",
                                                             "Content-Type": "image/png"}), None)
    assert direct["statusCode"] == 413 and "POST /files/<path>" in json.loads(direct["body"])["error"]["message"]
    s3.put_object(Bucket=aws["BUCKET"], Key="users/bea/big.png", Body=image)
    body = json.dumps({"uri": f"s3://{aws['BUCKET']}/users/bea/big.png"}).encode()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    reply = classify(url_event("POST", "/classify", body, headers), None)
    assert reply["statusCode"] == 200, reply["body"][:2000]
    assert len(json.loads(reply["body"])["predictions"]) >= 1


def test_a_larger_image_is_uploaded_straight_to_the_bucket_with_a_form(
        aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /files/<path> {"size"} reserves the bytes in the quota and answers an S3 form; the image posted to it
    is classified by its uri. Malformed sizes, a size past IMAGE_MAX_BYTES or past the quota are refused first."""
    from tests.conftest import configure

    configure(monkeypatch, MAX_BODY_BYTES="4194304", SPACE_MAX_BYTES=str(8 * 1024 * 1024))
    register, files, classify = handler("register"), handler("files_api"), handler("classify")
    reply = register(url_event("POST", "/register", json.dumps({"username": "cal", "password": "a long secret"})
                               .encode(), {"Content-Type": "application/json"}), None)
    headers = {"Authorization": f"Bearer {json.loads(reply['body'])['api_key']}", "Content-Type": "application/json"}

    def ask(path: str, size: Any) -> dict[str, Any]:
        return files(url_event("POST", path, json.dumps({"size": size}).encode(), headers), None)

    image = big_png(5 * 1024 * 1024)
    for size, status, code in ((0, 400, "invalid_size"), ("5", 400, "invalid_size"), (True, 400, "invalid_size"),
                               (10 * 1024 * 1024 + 1, 413, "payload_too_large")):
        refused = ask("/files/big/photo.png", size)
        assert (refused["statusCode"], json.loads(refused["body"])["error"]["code"]) == (status, code), refused
    assert ask("/files/big/", len(image))["statusCode"] == 400
    reply = ask("/files/big/photo.png", len(image))
    assert reply["statusCode"] == 201, reply["body"]
    form = json.loads(reply["body"])
    assert (form["path"], form["max_bytes"]) == ("big/photo.png", len(image))
    policy = json.loads(base64.b64decode(form["upload"]["fields"]["policy"]))  # S3 enforces it (moto does not)
    assert ["content-length-range", 1, len(image)] in policy["conditions"]
    assert form["upload"]["fields"]["key"] == "users/cal/big/photo.png"
    posted = requests.post(form["upload"]["url"], data=form["upload"]["fields"],
                           files={"file": ("photo.png", image, "image/png")}, timeout=120)
    assert posted.status_code in (200, 201, 204), posted.text
    over = ask("/files/big/other.png", len(image))  # the first form's bytes are reserved: 5 + 5 MiB > 8 MiB
    assert (over["statusCode"], json.loads(over["body"])["error"]["code"]) == (403, "quota_exceeded"), over
    body = json.dumps({"uri": f"s3://{aws['BUCKET']}/users/cal/big/photo.png"}).encode()
    reply = classify(url_event("POST", "/classify", body, headers), None)
    assert reply["statusCode"] == 200, reply["body"][:2000]
    hostile = json.loads(ask("/files/big/not-an-image.png", 1000)["body"])["upload"]  # S3 never looks at the bytes
    requests.post(hostile["url"], data=hostile["fields"], files={"file": ("x.png", b"MZ" * 500)}, timeout=60)
    body = json.dumps({"uri": f"s3://{aws['BUCKET']}/users/cal/big/not-an-image.png"}).encode()
    reply = classify(url_event("POST", "/classify", body, headers), None)
    assert (reply["statusCode"], json.loads(reply["body"])["error"]["code"]) == (415, "not_an_image"), reply
