"""The Terraform deployment matches the functions in the repository (terraform validate cannot run offline)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2

from tests.conftest import REPO

TF = REPO / "infra" / "terraform"


def unquote(value: Any) -> Any:
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


def load() -> dict[str, Any]:
    merged: dict[str, Any] = {"resource": {}, "locals": {}}
    for path in sorted(TF.glob("*.tf")):
        with open(path) as f:
            doc = unquote(hcl2.load(f))
        for block in doc.get("resource", []):
            for kind, items in block.items():
                merged["resource"].setdefault(kind, {}).update(items)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
    return merged


def code_targets() -> dict[str, str]:
    """Every functions-framework target in functions/, with its signature type."""
    found = {}
    for main in sorted((REPO / "functions").glob("*/main.py")):
        for kind, name in re.findall(r"@functions_framework\.(http|cloud_event)\s*\n(?:@.*\n)*def (\w+)",
                                     main.read_text()):
            found[name] = kind
    return found


def test_terraform_fmt() -> None:
    terraform = shutil.which("terraform")
    assert terraform, "terraform is not installed: install it (e.g. apt-get install terraform) to check formatting"
    result = subprocess.run([terraform, "fmt", "-check", "-recursive", str(TF)], capture_output=True, text=True)
    assert result.returncode == 0, f"terraform fmt would change: {result.stdout}"


def test_every_target_is_deployed_once_with_the_right_trigger() -> None:
    from infra.targets import TARGETS

    targets = code_targets()
    assert targets == {t.name: "http" if t.signature == "http" else "cloud_event" for t in TARGETS.values()}
    tf = load()
    functions = tf["resource"]["google_cloudfunctions2_function"]
    http = tf["locals"]["http_functions"]
    deployed = set(http) | {"on_upload"}
    assert deployed == set(targets)
    assert set(functions) == {"http", "on_upload"}
    assert functions["http"]["for_each"] == "${local.http_functions}"
    for name, spec in http.items():
        assert spec["entry_point"] == name
    for fn in functions.values():
        assert fn["build_config"][0]["runtime"] == "python311"
    assert functions["http"]["build_config"][0]["entry_point"] == "${each.value.entry_point}"
    assert "event_trigger" not in functions["http"]
    upload = functions["on_upload"]
    assert upload["build_config"][0]["entry_point"] == "on_upload"
    assert upload["event_trigger"][0]["event_type"] == "google.cloud.storage.object.v1.finalized"
    # exactly the public targets may be called by anyone; the internal ones only by the push/scheduler identity
    public = {t.name for t in TARGETS.values() if t.trigger == "http"}
    assert set(tf["locals"]["public_functions"]) == public
    assert tf["resource"]["google_cloud_run_service_iam_member"]["public"]["for_each"] == \
        "${toset(local.public_functions)}"
    internal = {t.name for t in TARGETS.values() if t.trigger in ("queue", "schedule")}
    invoker = tf["resource"]["google_cloud_run_service_iam_member"]["pusher_invokes_worker"]
    assert set(re.findall(r'"(\w+)"', invoker["for_each"])) == internal
    # each queue target is fed by an OIDC-authenticated push subscription; the worker's has a dead-letter topic
    pushes = tf["resource"]["google_pubsub_subscription"]
    for target in (t.name for t in TARGETS.values() if t.trigger == "queue"):
        fed = [s for s in pushes.values() if f'http["{target}"]' in s["push_config"][0]["push_endpoint"]]
        assert len(fed) == 1, target
        assert fed[0]["push_config"][0]["oidc_token"][0]["service_account_email"]
    assert "sort_images_dead_letter" in pushes["sort_worker_push"]["dead_letter_policy"][0]["dead_letter_topic"]
    assert "sort_images_dead_letter" in pushes["sort_dead_letter_push"]["topic"]
    # the scheduled targets are called by Cloud Scheduler with an OIDC token
    jobs = tf["resource"]["google_cloud_scheduler_job"]
    for target in (t.name for t in TARGETS.values() if t.trigger == "schedule"):
        job = [j for j in jobs.values() if f'http["{target}"]' in j["http_target"][0]["uri"]]
        assert len(job) == 1 and job[0]["http_target"][0]["oidc_token"][0]["service_account_email"], target
    # whoever publishes to the queue may: jobs, training runs, and the worker (a model's fit)
    publishers = tf["resource"]["google_pubsub_topic_iam_member"]["publishers"]["for_each"]
    assert set(re.findall(r'"(\w+)"', publishers)) == {"sort_job", "models", "sort_worker"}
    # one service account per function; the admin password comes from Secret Manager
    assert tf["resource"]["google_service_account"]["fn"]["for_each"] == "${local.all_functions}"
    assert "google_secret_manager_secret" in tf["resource"]
    assert "ADMIN_PASSWORD" not in str(tf["locals"]["common_env"])


def test_every_deployed_source_is_a_bundle() -> None:
    from infra.bundles import TARGETS

    assert set(TARGETS) == set(code_targets())
    assert Path(TF / "variables.tf").exists() and Path(TF / "outputs.tf").exists()
