"""`imageclassify usage`, `imageclassify webhooks ...` and `--webhook` on job and train, run as a user runs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

from tests.test_client import FakeApi, Stack, client_env, fake, fake_env, new_user, run, run_json, stack

__all__ = ["fake", "fake_env", "stack"]  # the fixtures, used by name


def test_usage_and_webhooks_against_the_real_stack(tmp_path: Path, stack: Stack) -> None:
    env = client_env(tmp_path, stack.url)
    new_user(env)
    report = run_json(env, "usage")
    assert len(report["usage"]) == 30 and all(row["spent"] == 0 for row in report["usage"])
    assert run(env, "usage", "--group", "kind", "--csv").stdout.splitlines() == [
        "kind,spent,refunded,net,images", "classify,0,0,0,0", "job,0,0,0,0", "training,0,0,0,0"]
    assert "total" in run(env, "usage", "--group", "kind").stdout
    bad = run(env, "usage", "--from", "last week", ok=False)
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
    secret = run(env, "webhooks", "secret").stdout.strip()
    assert secret.startswith("whsec_") and run(env, "webhooks", "secret").stdout.strip() == secret
    rotated = run_json(env, "webhooks", "secret", "--rotate")["secret"]
    assert rotated != secret
    assert run_json(env, "webhooks", "deliveries") == {"deliveries": []}
    refused = run(env, "job", "all/", "--classes", "food", "--webhook", "http://example.com/hook", ok=False)
    assert refused.returncode == 1 and "https" in refused.stderr  # no loopback exception on this stack


def test_webhook_options_and_verify(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    fake.route("POST", "/jobs", lambda s: (202, {"id": "j1", "status": "queued", "total": 1}))
    fake.route("POST", "/models", lambda s: (202, {"name": "pets", "status": "queued"}))
    run_json(fake_env, "job", "all/", "--classes", "dog", "--webhook", "https://example.com/h")
    assert fake.requests("POST", "/jobs")[-1].json()["webhook"] == "https://example.com/h"
    run_json(fake_env, "train", "pets/", "--name", "pets", "--webhook", "https://example.com/m")
    assert fake.requests("POST", "/models")[-1].json()["webhook"] == "https://example.com/m"

    secret, body = "whsec_test", json.dumps({"type": "job.finished", "id": "j1"}).encode()
    (tmp_path / "body.json").write_bytes(body)

    def header(stamp: int, signed: bytes = body) -> str:
        mac = hmac.new(secret.encode(), f"{stamp}.".encode() + signed, hashlib.sha256).hexdigest()
        return f"t={stamp},v1={mac}"

    now = int(time.time())
    good = run(fake_env, "webhooks", "verify", "--secret", secret, "--signature", header(now), str(tmp_path / "body.json"))
    assert good.stdout.strip() == "valid"
    piped = run(fake_env, "webhooks", "verify", "--secret", secret, "--signature", header(now), stdin=body.decode())
    assert piped.stdout.strip() == "valid"
    for wrong in (header(now, b"{}"), header(now - 3600), "t=1,v1=00", "nonsense"):
        bad = run(fake_env, "webhooks", "verify", "--secret", secret, "--signature", wrong,
                  str(tmp_path / "body.json"), ok=False)
        assert bad.returncode == 1 and "invalid" in bad.stderr
    other = run({**fake_env, "IMAGECLASSIFY_WEBHOOK_SECRET": "whsec_other"}, "webhooks", "verify", "--signature",
                header(now), str(tmp_path / "body.json"), ok=False)
    assert other.returncode == 1
