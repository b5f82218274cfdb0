"""The AWS Terraform (infra/terraform-aws) deploys exactly the targets of infra/targets.py, each with its trigger,
validates offline with the cached AWS provider, and applies on moto_server.

As for Google's (tests/test_terraform.py), the per-target locals of targets.tf are evaluated by `terraform console`
and each resource that wires a trigger has its `for_each` evaluated against them. `terraform init` reads the
provider from /opt/tf-plugins only (the machine is offline); checkov scans this folder too (test_terraform.py).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra import lambda_bundles
from infra.targets import TARGETS, Target
from tests.conftest import REPO
from tests.test_terraform import (
    OFFLINE,
    cross_check_fails_for_a_missing_or_miswired_target,
    evaluate,
    expression,
    terraform,
)
from tests.test_terraform import load as load_folder
from tests.test_terraform import mismatches as registry_mismatches

TF = REPO / "infra" / "terraform-aws"
PLUGINS = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
KINDS = ("http", "queue", "bucket", "schedule")
# Each trigger kind -> the resources that feed its targets.
WIRING = {
    "http": [("aws_lambda_function_url", "api")],
    "queue": [("aws_lambda_event_source_mapping", "queue")],
    "bucket": [("aws_lambda_event_source_mapping", "queue"), ("aws_sqs_queue_policy", "uploads")],
    "schedule": [("aws_cloudwatch_event_rule", "schedule"), ("aws_cloudwatch_event_target", "schedule"),
                 ("aws_lambda_permission", "schedule")],
}


def load() -> dict[str, Any]:
    return load_folder(TF)


def console(expressions: dict[str, str]) -> dict[str, Any]:
    return evaluate(expressions, folder=TF)


def init(folder: Path) -> Any:
    """`terraform init` of a copy of the AWS Terraform, from the plugin dir only; the run options for what follows."""
    assert PLUGINS.is_dir(), (f"{PLUGINS} (the cached AWS provider) is missing: run `terraform providers mirror "
                              f"{PLUGINS}` in infra/terraform-aws on a machine with network, or set TF_PLUGIN_DIR")
    folder.mkdir(parents=True, exist_ok=True)
    for path in TF.glob("*.tf"):
        shutil.copy(path, folder)
    run = {"cwd": folder, "env": OFFLINE, "capture_output": True, "text": True, "timeout": 300}
    result = subprocess.run([terraform(), "init", "-backend=false", f"-plugin-dir={PLUGINS}", "-input=false",
                             "-no-color"], **run)  # type: ignore[call-overload]
    assert result.returncode == 0, result.stdout + result.stderr
    return run


@functools.cache
def facts() -> dict[str, Any]:
    """The evaluated per-target settings and the targets each trigger resource iterates over."""
    resources = load()["resource"]
    exprs = {"functions": "local.functions", "store_indexes": "local.store_indexes", "consumers": "local.consumers",
             "deployed": f"keys({expression(resources['aws_lambda_function']['fn']['for_each'])})"}
    for wiring in WIRING.values():
        for resource, name in wiring:
            exprs[f"{resource}.{name}"] = f"keys({expression(resources[resource][name]['for_each'])})"
    notified = resources["aws_s3_bucket_notification"]["uploads"]["dynamic"][0]["queue"]["for_each"]
    exprs["notified"] = f"keys({expression(notified)})"
    return console(exprs)


def wired(found: dict[str, Any], kind: str) -> set[str]:
    """The targets wired as `kind`: those every resource of that kind iterates over (plus web's own URL)."""
    sets = [set(found[f"{resource}.{name}"]) for resource, name in WIRING[kind]]
    if kind == "bucket":
        sets.append(set(found["notified"]))
    names = set.intersection(*sets)
    if kind == "http":
        names.add("web")
    elif kind == "queue":
        names -= set(found["notified"])
    return names


def mismatches(targets: dict[str, Target], found: dict[str, Any]) -> list[str]:
    """What differs between the registry and the evaluated AWS Terraform (the Google test's rule, AWS's wiring)."""
    return registry_mismatches(targets, found, lambda kind: wired(found, kind))


def test_terraform_fmt() -> None:
    result = subprocess.run([terraform(), "fmt", "-check", "-recursive", str(TF)], capture_output=True, text=True,
                            env=OFFLINE)
    assert result.returncode == 0, f"terraform fmt would change: {result.stdout}"


def test_init_from_the_plugin_dir_and_validate(tmp_path: Path) -> None:
    run = init(tmp_path / "tf")
    result = subprocess.run([terraform(), "validate", "-no-color"], **run)
    assert result.returncode == 0 and "The configuration is valid" in result.stdout, result.stdout + result.stderr
    assert list((tmp_path / "tf" / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp").iterdir()) == [
        tmp_path / "tf" / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp" / "aws"], "aws only"


def test_every_registry_target_is_deployed_once_with_its_trigger() -> None:
    found = facts()
    assert mismatches(TARGETS, found) == []
    resources = load()["resource"]
    assert list(resources["aws_lambda_function"]) == ["fn"], "one function resource for every target"
    fn = resources["aws_lambda_function"]["fn"]
    assert (fn["runtime"], fn["handler"]) == (lambda_bundles.RUNTIME, "lambda_main.handler")
    code = resources["aws_s3_object"]["code"]
    assert code["source"] == "${var.build_dir}/${each.key}.zip" and "${terraform_data.bundles}" in code["depends_on"]
    assert "filename" not in fn, "a zip over 50 MB is taken from S3 only"
    assert (fn["s3_key"], fn["s3_object_version"]) == (
        "${aws_s3_object.code[each.key].key}", "${aws_s3_object.code[each.key].version_id}")
    assert load()["variable"]["build_dir"]["default"] == "../../build/lambda"
    assert fn["environment"][0]["variables"] == "${local.function_env[each.key]}"
    assert "${terraform_data.bundles}" in fn["depends_on"]


def test_the_cross_check_fails_for_a_missing_or_miswired_target() -> None:
    cross_check_fails_for_a_missing_or_miswired_target(facts(), mismatches)


def test_only_public_targets_have_a_url_and_it_takes_no_aws_auth_with_cors_for_the_console() -> None:
    resources = load()["resource"]
    urls = [resources["aws_lambda_function_url"][name] for name in ("web", "api")]
    assert {url["authorization_type"] for url in urls} == {"NONE"}
    assert set(facts()["aws_lambda_function_url.api"]) | {"web"} == {
        t.name for t in TARGETS.values() if t.trigger == "http"}
    cors = resources["aws_lambda_function_url"]["api"]["cors"][0]
    assert cors["allow_origins"] == "${local.cors_origins}"
    assert "aws_lambda_function_url.web.function_url" in load()["locals"]["cors_origins"]
    assert "var.cors_origins" in load()["locals"]["cors_origins"]


def test_queue_targets_report_partial_failures_and_dead_letters_are_handled() -> None:
    found = facts()
    functions, consumers = found["functions"], found["consumers"]
    assert (functions["sort_worker"]["queue"], functions["sort_worker"]["dead_letter"]) == (
        "sort-images", "sort-images-dead-letter")
    assert consumers["sort-images-dead-letter"]["name"] == "sort_dead_letter"
    assert (functions["on_upload"]["queue"], functions["on_upload"]["env"]["WATCH_PREFIX"]) == ("uploads", "inbox/")
    mapping = load()["resource"]["aws_lambda_event_source_mapping"]["queue"]
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    notification = load()["resource"]["aws_s3_bucket_notification"]["uploads"]["dynamic"][0]["queue"]["content"][0]
    assert notification["events"] == ["s3:ObjectCreated:*"]
    assert notification["filter_prefix"] == "${queue.value.env.WATCH_PREFIX}"
    published = {q for fn in functions.values() for q in fn["publishes"]}
    assert published <= set(consumers), "every queue sent to has a consumer"


class Recorder:
    """Stands in for boto3's DynamoDB client: keeps what create_table() asks for."""

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return lambda **kwargs: self.calls.setdefault(name, kwargs)

    def get_waiter(self, name: str) -> Any:
        return self


def test_the_table_is_the_one_the_adapter_creates() -> None:
    """One table, as common/adapters/store/dynamodb.py's create_table() makes it (the apply test compares the two
    on moto_server too): pk, the sparse expiry index, one index per found field, TTL on `ttl`."""
    from common.adapters.store.dynamodb import create_table

    client = Recorder()
    create_table(client, "t")
    made, ttl = client.calls["create_table"], client.calls["update_time_to_live"]["TimeToLiveSpecification"]
    indexes = facts()["store_indexes"]
    table = load()["resource"]["aws_dynamodb_table"]["store"]
    assert table["billing_mode"] == made["BillingMode"] == "PAY_PER_REQUEST"
    assert [{"AttributeName": table["hash_key"], "KeyType": "HASH"}] == made["KeySchema"]
    static = {(a["name"], a["type"]) for a in table["attribute"]}
    assert static | {(f"ix_{f}", "S") for f in indexes} == \
        {(a["AttributeName"], a["AttributeType"]) for a in made["AttributeDefinitions"]}
    expiry = table["global_secondary_index"][0]
    assert {(expiry["name"], expiry["hash_key"], expiry.get("range_key"))} | \
        {(f"by_{f}", f"ix_{f}", None) for f in indexes} == \
        {(i["IndexName"], *(k["AttributeName"] for k in i["KeySchema"]), *([None] * (2 - len(i["KeySchema"]))))
         for i in made["GlobalSecondaryIndexes"]}
    assert (table["ttl"][0]["enabled"], table["ttl"][0]["attribute_name"]) == (ttl["Enabled"], ttl["AttributeName"])
    assert table["point_in_time_recovery"][0]["enabled"] is True
    assert table["server_side_encryption"][0]["enabled"] is True


def test_a_plan_without_the_bundles_says_to_build_them(tmp_path: Path) -> None:
    """bundles.tf with targets.tf alone (terraform_data is built in: no provider, no credentials)."""
    build, folder = tmp_path / "build", tmp_path / "tf"
    build.mkdir()
    folder.mkdir()
    (build / "web.zip").write_bytes(b"PK")
    for name in ("targets.tf", "bundles.tf"):
        shutil.copy(TF / name, folder)
    (folder / "stub.tf").write_text('variable "build_dir" {\n  type = string\n}\n')
    run = {"cwd": folder, "env": OFFLINE, "capture_output": True, "text": True, "timeout": 120}
    assert subprocess.run([terraform(), "init", "-input=false"], **run).returncode == 0  # type: ignore[call-overload]
    result = subprocess.run([terraform(), "plan", "-input=false", "-no-color", f"-var=build_dir={build}"],
                            **run)  # type: ignore[call-overload]
    message = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "Build them first: `nox -s bundles`" in message, message
    assert "register.zip" in message and "web.zip," not in message


@pytest.mark.slow
def test_apply_on_moto_server_creates_every_resource(tmp_path: Path) -> None:
    from tests.terraform_moto import apply_and_check

    apply_and_check(init(tmp_path / "tf"), tmp_path)
