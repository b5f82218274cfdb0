"""`terraform apply` of infra/terraform-aws against a moto_server of its own, what exists afterwards, and destroy.

The provider reaches moto through an override file (`endpoints`, fake credentials, no account lookup, path-style
S3); the Lambda zips are placeholders (moto stores them and never runs them). Two attributes are overridden for
moto: the dead-letter queues' `redrive_allow_policy`, which moto 5.2.1 drops (GetQueueAttributes never returns
RedriveAllowPolicy, so the provider waits for it three minutes and fails). And the code bucket's TLS-only policy
denies on an action Terraform never calls: moto enforces it, and the test reaches moto over plain HTTP (the zips'
uploads would be refused). Everything else applies as written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra import lambda_bundles, processes
from infra.targets import TARGETS
from tests.test_terraform import terraform

SERVICES = ("cloudwatch", "cloudwatchlogs", "dynamodb", "events", "iam", "lambda", "s3", "secretsmanager", "sns",
            "sqs", "ssm", "sts")
REGION, PREFIX, BUCKET = "us-east-1", "icf-test", "icf-test-images"


def override(url: str) -> str:
    endpoints = "\n".join(f'    {service} = "{url}"' for service in SERVICES)
    return f"""provider "aws" {{
  region                      = "{REGION}"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {{
{endpoints}
  }}
}}

resource "aws_sqs_queue" "dead_letter" {{
  redrive_allow_policy = null # moto 5.2.1 does not keep it (see tests/terraform_moto.py)
}}

resource "aws_s3_bucket_policy" "code" {{
  # TLS-only on an action never used here: moto denies every plain-HTTP call under the real one (see tests/terraform_moto.py)
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [{{
      Sid = "TLSOnly", Effect = "Deny", Principal = "*", Action = "s3:PutBucketAcl", Resource = aws_s3_bucket.code.arn
      Condition = {{ Bool = {{ "aws:SecureTransport" = "false" }} }}
    }}]
  }})
}}
"""


def apply_and_check(run: dict[str, Any], tmp: Path) -> None:
    folder: Path = run["cwd"]
    build = tmp / "build"
    build.mkdir()
    for name in TARGETS:
        subprocess.run(["python3", "-m", "zipfile", "-c", str(build / f"{name}.zip"), str(write_handler(tmp))],
                       check=True, timeout=60)
    server = processes.moto()
    try:
        (folder / "moto_override.tf").write_text(override(server.url))
        args = ["-input=false", "-no-color", "-auto-approve", f"-var=bucket_name={BUCKET}", "-var=admin_password=pw",
                f"-var=name_prefix={PREFIX}", f"-var=build_dir={build}", "-var=deletion_protection=false",
                "-var=force_destroy=true", "-var=cors_origins=[\"https://console.example\"]"]
        run = {**run, "timeout": 900}
        applied = subprocess.run([terraform(), "apply", *args], **run)
        try:
            assert applied.returncode == 0, applied.stdout[-6000:] + applied.stderr[-4000:]
            outputs = json.loads(subprocess.run([terraform(), "output", "-json"], **run).stdout)
            check(server.url, {name: value["value"] for name, value in outputs.items()})
        finally:
            destroyed = subprocess.run([terraform(), "destroy", *args], **run)
        assert destroyed.returncode == 0, destroyed.stdout[-6000:] + destroyed.stderr[-4000:]
    finally:
        server.stop()


def write_handler(tmp: Path) -> Path:
    path = tmp / "lambda_main.py"
    path.write_text("def handler(event, context):\n    return {}\n")
    return path


def clients(url: str) -> Any:
    import boto3

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    return lambda service: session.client(service, endpoint_url=url)


def check(url: str, outputs: dict[str, Any]) -> None:
    aws = clients(url)
    check_functions(aws, outputs)
    check_queues(aws, outputs)
    check_storage(aws)
    check_access(aws)
    check_url_permissions(aws, url, outputs)  # last: it skips where there is no AWS CLI


def fn_name(target: str) -> str:
    return f"{PREFIX}-{target.replace('_', '-')}"


def check_functions(aws: Any, outputs: dict[str, Any]) -> None:
    lam = aws("lambda")
    found = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    assert set(found) == {fn_name(t) for t in TARGETS}
    for target in TARGETS.values():
        config = found[fn_name(target.name)]
        assert (config["Runtime"], config["Handler"]) == (lambda_bundles.RUNTIME, "lambda_main.handler")
        env = config["Environment"]["Variables"]
        assert env["STORE_BACKEND"] == "dynamodb" and env["BUCKET"] == BUCKET
        assert "pw" not in env.values() and "ADMIN_PASSWORD" not in env and "INTERNAL_SECRET" not in env
        if target.internal:
            assert target.name not in outputs["function_urls"]
            continue
        url = lam.get_function_url_config(FunctionName=fn_name(target.name))
        assert url["AuthType"] == "NONE" and url["FunctionUrl"].rstrip("/") == outputs["function_urls"][target.name]
        if target.name != "web":
            assert set(url["Cors"]["AllowOrigins"]) == {outputs["console_url"], "https://console.example"}
    assert set(outputs["function_urls"]) == {t.name for t in TARGETS.values() if not t.internal}
    assert found[fn_name("sort_worker")]["Environment"]["Variables"]["SQS_QUEUE_URL"] == outputs["queues"][
        "sort-images"]
    endpoints = json.loads(aws("ssm").get_parameter(Name=f"/{PREFIX}/API_ENDPOINTS")["Parameter"]["Value"])
    assert endpoints["classify"] == outputs["function_urls"]["classify"]
    for name in ("ADMIN_PASSWORD", "INTERNAL_SECRET"):
        assert aws("ssm").get_parameter(Name=f"/{PREFIX}/{name}")["Parameter"]["Type"] == "SecureString"
    rules = aws("events").list_rules(NamePrefix=fn_name("sweeper"))["Rules"]
    assert [r["ScheduleExpression"] for r in rules] == ["rate(5 minutes)"]
    targets = aws("events").list_targets_by_rule(Rule=rules[0]["Name"])["Targets"]
    assert [t["Arn"] for t in targets] == [found[fn_name("sweeper")]["FunctionArn"]]
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{PREFIX}-")["logGroups"]
    assert len(groups) == len(TARGETS) and {g["retentionInDays"] for g in groups} == {365}


def check_url_permissions(aws: Any, url: str, outputs: dict[str, Any]) -> None:
    """The README's step after an apply, run as written (`terraform output -raw function_url_permissions | sh`):
    the AWS CLI takes its flags, and each public function's policy gets the statement."""
    commands = outputs["function_url_permissions"].splitlines()
    assert len(commands) == len(outputs["function_urls"])
    if shutil.which("aws") is None:
        pytest.skip("no AWS CLI here to run the function URL permission commands with")
    env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    done = subprocess.run(["sh", "-e"], input="\n".join(commands), env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for target in outputs["function_urls"]:
        policy = json.loads(aws("lambda").get_policy(FunctionName=fn_name(target))["Policy"])
        found = {s["Sid"]: s for s in policy["Statement"]}["FunctionURLInvokeAllowPublicAccess"]
        assert (found["Action"], found["Principal"]) == ("lambda:InvokeFunction", "*"), found


def check_queues(aws: Any, outputs: dict[str, Any]) -> None:
    sqs, queues = aws("sqs"), outputs["queues"]
    attributes = {name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                  for name, url in queues.items()}
    assert set(queues) == {"sort-images", "sort-images-dead-letter", "uploads", "uploads-dead-letter"}
    assert {a["SqsManagedSseEnabled"] for a in attributes.values()} == {"true"}
    for queue in ("sort-images", "uploads"):
        redrive = json.loads(attributes[queue]["RedrivePolicy"])
        assert redrive == {"deadLetterTargetArn": attributes[f"{queue}-dead-letter"]["QueueArn"], "maxReceiveCount": 10}
    mappings = aws("lambda").list_event_source_mappings()["EventSourceMappings"]
    consumed = {m["FunctionArn"].rsplit(":", 1)[-1]: m for m in mappings}
    assert set(consumed) == {fn_name(t) for t in ("sort_worker", "sort_dead_letter", "on_upload")}
    for target, queue in (("sort_worker", "sort-images"), ("sort_dead_letter", "sort-images-dead-letter"),
                          ("on_upload", "uploads")):
        assert consumed[fn_name(target)]["EventSourceArn"] == attributes[queue]["QueueArn"]
        assert consumed[fn_name(target)]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    notified = aws("s3").get_bucket_notification_configuration(Bucket=BUCKET)["QueueConfigurations"]
    rules = [[(r["Name"].lower(), r["Value"]) for r in n["Filter"]["Key"]["FilterRules"]] for n in notified]
    assert [(n["QueueArn"], n["Events"]) for n in notified] == [(attributes["uploads"]["QueueArn"], ["s3:ObjectCreated:*"])]
    assert rules == [[("prefix", "inbox/")]]
    alarms = aws("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    assert {(a["MetricName"], a["Dimensions"][0]["Value"]) for a in alarms} == {
        ("ApproximateNumberOfMessagesVisible", f"{PREFIX}-sort-images-dead-letter"),
        ("ApproximateNumberOfMessagesVisible", f"{PREFIX}-uploads-dead-letter"),
        ("NumberOfMessagesReceived", f"{PREFIX}-sort-images-dead-letter")}


def check_storage(aws: Any) -> None:
    s3, dynamodb = aws("s3"), aws("dynamodb")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in lifecycle] == [30]
    assert s3.get_bucket_logging(Bucket=BUCKET)["LoggingEnabled"]["TargetBucket"] == f"{BUCKET}-access-logs"
    check_code(aws)
    check_table(dynamodb)


def check_code(aws: Any) -> None:
    """The zips went to their own versioned, private bucket, and each function was created from its object."""
    s3, code = aws("s3"), f"{BUCKET}-lambda-code"
    assert s3.get_bucket_versioning(Bucket=code)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=code)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_logging(Bucket=code)["LoggingEnabled"]["TargetBucket"] == f"{BUCKET}-access-logs"
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=code)["Contents"]} == {f"{t}.zip" for t in TARGETS}
    sha = aws("lambda").get_function(FunctionName=fn_name("classify"))["Configuration"]["CodeSha256"]
    body = s3.get_object(Bucket=code, Key="classify.zip")["Body"].read()
    assert sha == base64.b64encode(hashlib.sha256(body).digest()).decode()


def check_table(dynamodb: Any) -> None:
    """The Terraform's table is the one the adapter's create_table() makes: keys, indexes, TTL, billing."""
    from common.adapters.store.dynamodb import create_table

    create_table(dynamodb, "reference")
    made, expected = (describe(dynamodb, t) for t in (f"{PREFIX}-store", "reference"))
    assert made == expected
    backups = dynamodb.describe_continuous_backups(TableName=f"{PREFIX}-store")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def describe(dynamodb: Any, table: str) -> dict[str, Any]:
    found = dynamodb.describe_table(TableName=table)["Table"]
    return {"keys": found["KeySchema"], "billing": found["BillingModeSummary"]["BillingMode"],
            "attributes": sorted(map(str, found["AttributeDefinitions"])),
            "indexes": sorted(str((i["IndexName"], i["KeySchema"], i["Projection"]["ProjectionType"]))
                              for i in found["GlobalSecondaryIndexes"]),
            "ttl": dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]}


def statements(aws: Any, target: str) -> dict[str, dict[str, Any]]:
    policy = aws("iam").get_role_policy(RoleName=fn_name(target), PolicyName="least-privilege")["PolicyDocument"]
    document = json.loads(policy) if isinstance(policy, str) else policy
    return {s["Sid"]: s for s in document["Statement"]}


def resource(statement: dict[str, Any]) -> str:
    """A statement's one resource (IAM writes a one-element list as a string)."""
    found = statement["Resource"]
    assert isinstance(found, str) or len(found) == 1, found
    return found if isinstance(found, str) else found[0]


def check_access(aws: Any) -> None:
    """Each role holds what its target needs and nothing else."""
    assert set(statements(aws, "register")) == {"OwnLogs", "Store", "OwnParameters"}
    assert set(statements(aws, "web")) == {"OwnLogs", "OwnParameters"}
    assert resource(statements(aws, "web")["OwnParameters"]).endswith(f":parameter/{PREFIX}/API_ENDPOINTS")
    upload = statements(aws, "on_upload")
    assert "Store" not in upload and resource(upload["Consume"]).endswith(f":{PREFIX}-uploads")
    worker = statements(aws, "sort_worker")
    assert resource(worker["Consume"]).endswith(f":{PREFIX}-sort-images")
    assert resource(worker["Send"]).endswith(f":{PREFIX}-sort-images")
    files = statements(aws, "files_api")
    assert resource(files["WritePrefixes"]).endswith(f":{BUCKET}/users/*") and resource(files["List"]).endswith(BUCKET)
    assert resource(statements(aws, "sort_dead_letter")["OwnParameters"]).endswith("/INTERNAL_SECRET")
