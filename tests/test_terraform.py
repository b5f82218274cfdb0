"""The Terraform deploys exactly the targets of infra/targets.py, each with its trigger, and passes checkov.

`terraform validate` cannot run offline (it downloads the provider), so the facts are checked two ways:
the per-target locals of infra/terraform/targets.tf are *evaluated* by `terraform console` (literals only,
no provider needed), and each resource that wires a trigger has its `for_each` evaluated against them, so
a target missing from the map or wired to another trigger fails here.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2

from infra.targets import TARGETS, Target
from tests.conftest import REPO

TF = REPO / "infra" / "terraform"
KINDS = ("http", "queue", "bucket", "schedule")
# Each trigger kind -> the resource that feeds its targets (the public invoker for http).
WIRING = {
    "http": ("google_cloud_run_service_iam_member", "public"),
    "queue": ("google_pubsub_subscription", "push"),
    "bucket": ("google_eventarc_trigger", "bucket"),
    "schedule": ("google_cloud_scheduler_job", "schedule"),
}
FN = "google_cloudfunctions2_function.fn[each.key]"
# No version check, no CLI configuration: nothing here needs a provider or the network.
OFFLINE = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull}


def unquote(value: Any) -> Any:
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


@functools.cache
def load(folder: Path = TF) -> dict[str, Any]:
    merged: dict[str, Any] = {"resource": {}, "locals": {}, "variable": {}}
    for path in sorted(folder.glob("*.tf")):
        with open(path) as f:
            doc = unquote(hcl2.load(f))
        for block in doc.get("resource", []):
            for kind, items in block.items():
                for name in items:
                    assert name not in merged["resource"].get(kind, {}), f"{kind}.{name} is declared twice"
                merged["resource"].setdefault(kind, {}).update(items)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        for block in doc.get("variable", []):
            merged["variable"].update(block)
    return merged


def expression(value: str) -> str:
    """The HCL expression of an attribute that is one interpolation, `${...}`."""
    assert value.startswith("${") and value.endswith("}"), value
    return value[2:-1]


def terraform() -> str:
    found = shutil.which("terraform")
    assert found, "terraform is not installed: install it (https://developer.hashicorp.com/terraform/install)"
    return found


def evaluate(expressions: dict[str, str], stub: str = "", files: tuple[str, ...] = ("targets.tf",),
             folder: Path = TF) -> dict[str, Any]:
    """Evaluate HCL expressions over `files` of `folder` (+ `stub`, e.g. stand-ins for other locals) with
    terraform console."""
    body = ", ".join(f'"{key}" = {expr}' for key, expr in expressions.items())
    with tempfile.TemporaryDirectory() as tmp:
        for name in files:
            shutil.copy(folder / name, tmp)
        Path(tmp, "stub.tf").write_text(stub)
        result = subprocess.run([terraform(), "console"], input=f"jsonencode({{{body}}})\n", cwd=tmp, env=OFFLINE,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"terraform console failed: {result.stderr}"
    return json.loads(json.loads(result.stdout.strip().splitlines()[-1]))


def per_target(expr: str) -> str:
    """An object expression giving `expr` (written with each.key / each.value) for every target."""
    def at(name: str) -> str:
        return expr.replace("each.value", f"local.functions[{json.dumps(name)}]").replace("each.key", json.dumps(name))

    return "{" + ", ".join(f"{json.dumps(name)} = {at(name)}" for name in TARGETS) + "}"


@functools.cache
def facts() -> dict[str, Any]:
    """The evaluated per-target settings and the targets each trigger resource iterates over."""
    resources = load()["resource"]
    exprs = {"functions": "local.functions", "internal": "keys(local.internal)"}
    for kind, (resource, name) in WIRING.items():
        exprs[f"wired_{kind}"] = f"keys({expression(resources[resource][name]['for_each'])})"
    exprs["invoked_by_trigger"] = f"keys({expression(resources['google_cloud_run_service_iam_member']['trigger_invokes']['for_each'])})"
    exprs["deployed"] = f"keys({expression(resources['google_cloudfunctions2_function']['fn']['for_each'])})"
    return evaluate(exprs)


def registry(kind: str) -> set[str]:
    return {t.name for t in TARGETS.values() if t.trigger == kind}


def mismatches(targets: dict[str, Target], found: dict[str, Any],
               wired: Callable[[str], set[str]] | None = None) -> list[str]:
    """What differs between the registry and the evaluated Terraform (empty when they agree); `wired(kind)`: the
    functions that Terraform wires as `kind` (here, `found["wired_<kind>"]`; the AWS Terraform computes them)."""
    wired = wired or (lambda kind: set(found[f"wired_{kind}"]))
    problems = []
    for name in sorted(set(targets) - set(found["deployed"])):
        problems.append(f"{name} is in infra/targets.py but not deployed: add it to `targets` in targets.tf")
    for name in sorted(set(found["deployed"]) - set(targets)):
        problems.append(f"{name} is deployed but not in infra/targets.py")
    for name, target in sorted(targets.items()):
        fn = found["functions"].get(name)
        if fn is not None and fn["trigger"] != target.trigger:
            problems.append(f"{name}: Terraform trigger {fn['trigger']!r}, registry {target.trigger!r}")
        for kind in KINDS:
            if (name in wired(kind)) != (target.trigger == kind):
                problems.append(f"{name}: {'wired' if kind != target.trigger else 'not wired'} as {kind}")
    return problems


def code_targets() -> dict[str, str]:
    """Every functions-framework target in functions/, with its signature type."""
    found = {}
    for main in sorted((REPO / "functions").glob("*/main.py")):
        for kind, name in re.findall(r"@functions_framework\.(http|cloud_event)\s*\n(?:@.*\n)*def (\w+)",
                                     main.read_text()):
            found[name] = kind
    return found


def test_terraform_fmt() -> None:
    result = subprocess.run([terraform(), "fmt", "-check", "-recursive", str(TF)], capture_output=True, text=True,
                            env=OFFLINE)
    assert result.returncode == 0, f"terraform fmt would change: {result.stdout}"


def test_the_registry_names_every_target_in_the_code() -> None:
    signature = {"http": "http", "cloud_event": "cloudevent"}
    assert {name: signature[kind] for name, kind in code_targets().items()} == \
        {t.name: t.signature for t in TARGETS.values()}


def test_every_registry_target_is_deployed_once_with_its_trigger() -> None:
    found = facts()
    assert mismatches(TARGETS, found) == []
    assert set(found["internal"]) == set(found["invoked_by_trigger"]) == {t.name for t in TARGETS.values() if t.internal}
    resources = load()["resource"]
    assert list(resources["google_cloudfunctions2_function"]) == ["fn"], "one function resource for every target"
    assert "google_cloud_run_v2_service" not in resources and "google_cloudfunctions_function" not in resources
    fn = resources["google_cloudfunctions2_function"]["fn"]
    assert fn["build_config"][0]["runtime"] == "python311"
    assert fn["build_config"][0]["entry_point"] == "${each.key}"
    assert fn["build_config"][0]["source"][0]["storage_source"][0]["object"] == \
        "${google_storage_bucket_object.source[each.key].name}"
    source = resources["google_storage_bucket_object"]["source"]
    assert source["for_each"] == "${local.functions}" and source["source"] == "${var.build_dir}/${each.key}.zip"
    assert "event_trigger" not in fn, "triggers are wired in triggers.tf, one resource per kind"


def test_the_cross_check_fails_for_a_missing_or_miswired_target() -> None:
    cross_check_fails_for_a_missing_or_miswired_target(facts(), mismatches)


def cross_check_fails_for_a_missing_or_miswired_target(
        found: dict[str, Any], mismatches: Callable[[dict[str, Target], dict[str, Any]], list[str]]) -> None:
    """A target added to the registry but not deployed, or moved to another trigger, is named (both clouds)."""
    extra = {**TARGETS, "newcomer": Target("newcomer", "newcomer")}
    assert "newcomer is in infra/targets.py but not deployed: add it to `targets` in targets.tf" in mismatches(
        extra, found)
    moved = {**TARGETS, "sweeper": Target("sweeper", "sort_job", trigger="queue")}
    assert "sweeper: Terraform trigger 'schedule', registry 'queue'" in mismatches(moved, found)
    assert "sweeper: not wired as queue" in mismatches(moved, found)


def test_public_functions_allow_all_and_internal_ones_only_their_trigger() -> None:
    resources = load()["resource"]
    service = resources["google_cloudfunctions2_function"]["fn"]["service_config"][0]
    ingress = evaluate({"ingress": per_target(expression(service["ingress_settings"]))})["ingress"]
    assert ingress == {t.name: "ALLOW_INTERNAL_ONLY" if t.internal else "ALLOW_ALL" for t in TARGETS.values()}
    public = resources["google_cloud_run_service_iam_member"]["public"]
    assert (public["role"], public["member"], public["service"]) == ("roles/run.invoker", "allUsers", f"${{{FN}.name}}")
    assert set(facts()["wired_http"]) == registry("http")
    # nothing else is open to everyone
    text = json.dumps({kind: items for kind, items in resources.items()})
    assert text.count("allUsers") == 1 and "allAuthenticatedUsers" not in text
    invoker = resources["google_cloud_run_service_iam_member"]["trigger_invokes"]
    assert invoker["member"] == "serviceAccount:${google_service_account.trigger[each.value.trigger].email}"
    accounts = load()["locals"]["trigger_accounts"]
    assert set(accounts) == set(KINDS) - {"http"}


def test_queue_targets_are_fed_by_oidc_push_with_a_handled_dead_letter_topic() -> None:
    functions = facts()["functions"]
    assert functions["sort_worker"]["topic"] == "sort-images"
    assert functions["sort_worker"]["dead_letter_topic"] == "sort-images-dead-letter"
    assert functions["sort_dead_letter"]["topic"] == "sort-images-dead-letter"
    consumed = {functions[name]["topic"] for name in registry("queue")}
    assert None not in consumed, "every queue target names its topic"
    dead_letter_topics = {fn["dead_letter_topic"] for fn in functions.values()} - {None}
    assert dead_letter_topics <= consumed, "every dead-letter topic has a handler's push subscription"
    published = {t for fn in functions.values() for t in fn["publishes"]}
    assert "sort-images" in functions["sort_job"]["publishes"] and published <= consumed
    push = load()["resource"]["google_pubsub_subscription"]["push"]
    assert push["topic"] == "${google_pubsub_topic.topic[each.value.topic].id}"
    assert push["push_config"][0]["push_endpoint"] == f"${{{FN}.service_config[0].uri}}"
    oidc = push["push_config"][0]["oidc_token"][0]
    assert oidc["service_account_email"] == '${google_service_account.trigger["queue"].email}'
    assert oidc["audience"] == push["push_config"][0]["push_endpoint"]
    dead_letter = push["dynamic"][0]["dead_letter_policy"]
    assert "each.value.dead_letter_topic" in dead_letter["for_each"]
    assert dead_letter["content"][0]["dead_letter_topic"] == "${google_pubsub_topic.topic[dead_letter_policy.value].id}"


def test_bucket_targets_get_eventarc_from_a_notification_of_their_watched_prefix_only() -> None:
    """Eventarc delivers a topic that Cloud Storage notifies of the objects under WATCH_PREFIX only: a trigger on
    the whole bucket would start the function for every upload, job copy and label (the rehearsal counted 44
    starts of on_upload in its journeys, none for an upload it labels)."""
    resources = load()["resource"]
    trigger = resources["google_eventarc_trigger"]["bucket"]
    criteria = {c["attribute"]: c["value"] for c in trigger["matching_criteria"]}
    assert criteria == {"type": "google.cloud.pubsub.topic.v1.messagePublished"}
    assert trigger["transport"][0]["pubsub"][0]["topic"] == "${google_pubsub_topic.uploads[each.key].id}"
    assert trigger["destination"][0]["cloud_run_service"][0]["service"] == f"${{{FN}.name}}"
    assert trigger["service_account"] == '${google_service_account.trigger["bucket"].email}'
    notification = resources["google_storage_notification"]["uploads"]
    assert (notification["bucket"], notification["event_types"], notification["payload_format"]) == (
        "${google_storage_bucket.images.name}", ["OBJECT_FINALIZE"], "JSON_API_V1")
    assert notification["topic"] == "${google_pubsub_topic.uploads[each.key].id}"
    prefixes = evaluate({"p": per_target(f"try({expression(notification['object_name_prefix'])}, null)")})["p"]
    assert prefixes["on_upload"] == "inbox/" == facts()["functions"]["on_upload"]["env"]["WATCH_PREFIX"]
    for kind in ("google_pubsub_topic", "google_pubsub_topic_iam_member", "google_storage_notification"):
        assert resources[kind]["uploads" if kind != "google_pubsub_topic_iam_member" else "gcs_publishes_uploads"][
            "for_each"] == '${local.by_trigger["bucket"]}', kind
    assert "gcs_publishes_events" not in resources.get("google_project_iam_member", {}), "topic-level grant only"


def test_schedule_targets_get_a_cloud_scheduler_post_with_oidc() -> None:
    functions = facts()["functions"]
    assert registry("schedule") >= {"sweeper"}
    for name in registry("schedule"):
        assert functions[name]["schedule"] in ("* * * * *", "*/5 * * * *"), name
    job = load()["resource"]["google_cloud_scheduler_job"]["schedule"]
    assert job["schedule"] == "${each.value.schedule}"
    http = job["http_target"][0]
    assert http["http_method"] == "POST" and http["uri"] == f"${{{FN}.service_config[0].uri}}"
    assert http["oidc_token"][0]["service_account_email"] == '${google_service_account.trigger["schedule"].email}'


def test_secrets_come_from_secret_manager_to_the_functions_that_need_them() -> None:
    functions = facts()["functions"]
    tf = load()
    for name, fn in functions.items():
        handles_messages = fn["trigger"] in ("queue", "schedule") or fn["publishes"]
        assert ("INTERNAL_SECRET" in fn["secrets"]) == bool(handles_messages), name
        assert "ADMIN_PASSWORD" not in fn["secrets"] or fn["trigger"] == "http", f"{name} is internal"
        assert not {"ADMIN_PASSWORD", "INTERNAL_SECRET"} & set(fn["env"]), name
    assert {"sort_job", "sort_worker", "sort_dead_letter", "sweeper"} <= \
        {name for name, fn in functions.items() if "INTERNAL_SECRET" in fn["secrets"]}
    assert set(tf["locals"]["secrets"]) == {"ADMIN_PASSWORD", "INTERNAL_SECRET"}
    assert not {"ADMIN_PASSWORD", "INTERNAL_SECRET"} & set(tf["locals"]["common_env"])
    service = tf["resource"]["google_cloudfunctions2_function"]["fn"]["service_config"][0]
    secret_env = service["dynamic"][0]["secret_environment_variables"]
    assert secret_env["for_each"] == "${toset(each.value.secrets)}"
    assert secret_env["content"][0]["key"] == "${secret_environment_variables.value}"
    grants = tf["resource"]["google_secret_manager_secret_iam_member"]["access"]
    assert grants["for_each"] == "${local.secret_grants}"
    assert tf["resource"]["google_secret_manager_secret_version"]["internal_secret"]["secret_data"] == \
        "${random_password.internal_secret.result}"
    assert tf["variable"]["admin_password"]["sensitive"] is True


URLS = {name: f"https://{name.replace('_', '-')}-123.europe-west1.run.app" for name in TARGETS}


def function_env(cors_origins: list[str]) -> dict[str, dict[str, str]]:
    """environment.tf's function_env, evaluated for project `p`, bucket `b` and the given cors_origins."""
    stub = f"""
variable "project" {{
  default = "proj-1"
}}
variable "bucket_name" {{
  default = "bucket-1"
}}
variable "admin_username" {{
  default = "admin"
}}
variable "cors_origins" {{
  type    = list(string)
  default = {json.dumps(cors_origins)}
}}
locals {{
  function_urls = {json.dumps(URLS).replace('":', '" =')}
}}
"""
    return dict(evaluate({"env": "local.function_env"}, stub, ("targets.tf", "environment.tf"))["env"])


def test_functions_get_their_environment_from_environment_tf() -> None:
    service = load()["resource"]["google_cloudfunctions2_function"]["fn"]["service_config"][0]
    assert service["environment_variables"] == "${local.function_env[each.key]}"
    env = function_env([])
    assert set(env) == set(TARGETS)
    assert env["on_upload"]["WATCH_PREFIX"] == "inbox/" and env["sweeper"]["STORE_BACKEND"] == "firestore"
    assert not {"ADMIN_PASSWORD", "INTERNAL_SECRET"} & {k for e in env.values() for k in e}


def test_the_web_consoles_own_url_is_an_allowed_origin_of_every_function_it_calls() -> None:
    """With no variable set, every function the console calls answers CORS for the web function's own URL;
    cors_origins only adds others, and internal functions answer no browser."""
    web = URLS["web"]
    default, added = function_env([]), function_env(["https://console.example", web])
    called = set(evaluate({"web_routes": "local.web_routes"})["web_routes"].values())
    assert called == {t.name for t in TARGETS.values() if t.trigger == "http"} - {"web"}
    for target in TARGETS.values():
        if target.internal:
            assert "CORS_ORIGINS" not in default[target.name] and "CORS_ORIGINS" not in added[target.name]
        else:
            assert default[target.name]["CORS_ORIGINS"] == web, target.name
            assert added[target.name]["CORS_ORIGINS"] == f"{web},https://console.example", target.name
    assert json.loads(default["web"]["API_ENDPOINTS"])["register"] == URLS["register"]
    outputs = (TF / "outputs.tf").read_text()
    assert 'value       = local.function_urls["web"]' in outputs, "console_url is the origin the functions allow"


def test_the_cloud_rehearsal_gives_every_function_the_terraform_environment() -> None:
    """infra/cloud_env.py (the rehearsal's environment) reads environment.tf and targets.tf: for the same
    variables and URLs it gives every function exactly what Terraform evaluates."""
    from infra import cloud_env

    for origins in ([], ["https://console.example"]):
        variables = {"project": "proj-1", "bucket_name": "bucket-1", "admin_username": "admin",
                     "cors_origins": origins}
        expected = function_env(origins)
        for name in TARGETS:
            assert cloud_env.environment(name, URLS, variables) == expected[name], name


def test_the_rehearsal_subscribes_with_the_terraform_queue_policy() -> None:
    from infra import cloud_env

    push = load()["resource"]["google_pubsub_subscription"]["push"]
    assert cloud_env.queue_policy() == {
        "minimumBackoff": push["retry_policy"][0]["minimum_backoff"],
        "maximumBackoff": push["retry_policy"][0]["maximum_backoff"],
        "maxDeliveryAttempts": push["dynamic"][0]["dead_letter_policy"]["content"][0]["max_delivery_attempts"]}
    assert push["ack_deadline_seconds"] == "${min(600, max(10, each.value.timeout))}"
    deadlines = evaluate({"ack": per_target("min(600, max(10, each.value.timeout))")})["ack"]
    assert deadlines == {name: cloud_env.ack_deadline(name) for name in TARGETS}
    assert facts()["functions"] == {name: {**fn, "env": fn["env"]} for name, fn in cloud_env.functions().items()}


def test_log_metrics_and_the_dead_letter_alert() -> None:
    tf = load()
    metrics = tf["resource"]["google_logging_metric"]
    assert set(metrics) >= {"errors", "latency", "dead_letters"}
    assert "severity>=ERROR" in metrics["errors"]["filter"]
    assert "httpRequest.latency" in metrics["latency"]["value_extractor"]
    assert metrics["latency"]["metric_descriptor"][0]["value_type"] == "DISTRIBUTION"
    assert 'jsonPayload.event=\\"dead_letter\\"' in metrics["dead_letters"]["filter"]
    assert "keys(local.functions)" in tf["locals"]["services_filter"]
    alert = tf["resource"]["google_monitoring_alert_policy"]["dead_letters"]
    condition = alert["conditions"][0]["condition_threshold"][0]
    assert '${time_sleep.dead_letter_metric.triggers["metric"]}' in condition["filter"]
    assert tf["resource"]["time_sleep"]["dead_letter_metric"]["triggers"] == {
        "metric": "${google_logging_metric.dead_letters.name}"}
    assert condition["comparison"] == "COMPARISON_GT" and condition["threshold_value"] == 0


def test_every_deployed_source_is_a_bundle() -> None:
    from infra.bundles import TARGETS as BUNDLED

    assert set(BUNDLED) == set(facts()["deployed"])
    assert Path(TF / "variables.tf").exists() and Path(TF / "outputs.tf").exists()


def checkov_command() -> tuple[str, list[str]]:
    """The pin and arguments of `nox -s checkov` (noxfile.py), so this test runs exactly what CI runs."""
    values = {}
    for node in ast.parse((REPO / "noxfile.py").read_text()).body:
        if not isinstance(node, ast.Assign):
            continue
        name = node.targets[0]
        if isinstance(name, ast.Name) and name.id in ("CHECKOV", "CHECKOV_ARGS"):
            values[name.id] = ast.literal_eval(node.value)
    return values["CHECKOV"], list(values["CHECKOV_ARGS"])


def test_checkov_finds_no_failed_check() -> None:
    """One scan of infra/, which holds both Terraform folders (Google's and AWS's)."""
    pin, args = checkov_command()
    scanned = REPO / args[args.index("-d") + 1]
    assert args.count("-d") == 1 and {TF.parent, TF.parent / "terraform-aws"} <= {scanned, *scanned.iterdir()}
    venv = REPO / ".nox" / "checkov" / "bin" / "checkov"
    binary = str(venv) if venv.exists() else shutil.which("checkov")
    assert binary, (f"checkov is not installed: run `nox -s checkov` (installs {pin} in .nox/checkov; it cannot "
                    "share the dev venv, whose boto3 pin it conflicts with)")
    result = subprocess.run([binary, *args], cwd=REPO, capture_output=True, text=True, timeout=600, env=OFFLINE)
    report = result.stdout + result.stderr
    assert "Failed checks: 0," in report and result.returncode == 0, report[-6000:]


def test_the_console_knows_where_every_public_route_is() -> None:
    """The web function's API_ENDPOINTS covers every public API route, each mapped to the function serving it."""
    routes = evaluate({"web_routes": "local.web_routes"})["web_routes"]
    expected = {route: t.name for t in TARGETS.values() if t.name != "web" and not t.internal for route in t.routes}
    assert routes == expected
    assert "API_ENDPOINTS" in (TF / "environment.tf").read_text()


# Resource type prefix -> the APIs it needs enabled on a fresh project.
APIS_FOR = {
    "google_cloudfunctions2_": {"cloudfunctions", "run", "cloudbuild", "artifactregistry"},
    "google_cloud_run_": {"run"}, "google_pubsub_": {"pubsub"}, "google_eventarc_": {"eventarc"},
    "google_cloud_scheduler_": {"cloudscheduler"}, "google_secret_manager_": {"secretmanager"},
    "google_firestore_": {"firestore"}, "google_logging_": {"logging"}, "google_monitoring_": {"monitoring"},
    "google_storage_": {"storage"}, "google_service_account": {"iam"},
}


def test_the_deployment_enables_every_api_it_uses() -> None:
    """`terraform apply` on a fresh project: each service the resources use is enabled by the deployment."""
    enabled = set(re.findall(r'"([a-z]+)\.googleapis\.com"', (TF / "apis.tf").read_text()))
    needed = {api for kind in load()["resource"] for prefix, apis in APIS_FOR.items() if kind.startswith(prefix)
              for api in apis}
    assert needed and needed <= enabled, sorted(needed - enabled)
    service = load()["resource"]["google_project_service"]["api"]
    assert service["disable_on_destroy"] is False  # other things in the project may use them
    for kind, name in [("google_cloudfunctions2_function", "fn"), ("google_firestore_database", "default"),
                       ("google_pubsub_topic", "topic"), ("google_secret_manager_secret", "secret")]:
        assert "${google_project_service.api}" in load()["resource"][kind][name]["depends_on"], (kind, name)


# -- a first `terraform apply` on a fresh project ------------------------------------------------------------


def test_functions_are_built_by_a_dedicated_build_account_with_the_builder_role() -> None:
    resources = load()["resource"]
    fn = resources["google_cloudfunctions2_function"]["fn"]
    assert fn["build_config"][0]["service_account"] == "${google_service_account.build.id}"
    grant = resources["google_project_iam_member"]["build"]
    assert (grant["role"], grant["member"]) == ("roles/cloudbuild.builds.builder",
                                                "serviceAccount:${google_service_account.build.email}")
    assert resources["time_sleep"]["build_grant"]["depends_on"] == ["${google_project_iam_member.build}"]
    assert {"${time_sleep.build_grant}", "${time_sleep.service_agents}"} <= set(fn["depends_on"])


def test_service_agents_eventarc_and_the_alert_wait_for_what_they_need() -> None:
    resources = load()["resource"]
    waits = resources["time_sleep"]
    assert waits["service_agents"]["depends_on"] == ["${google_project_service.api}"]
    assert set(waits["event_grants"]["depends_on"]) >= {
        "${time_sleep.service_agents}", "${google_service_account_iam_member.pubsub_mints_tokens}",
        "${google_project_iam_member.events_receiver}"}
    notification = resources["google_storage_notification"]["uploads"]
    assert notification["depends_on"] == ["${google_pubsub_topic_iam_member.gcs_publishes_uploads}"]
    assert resources["google_eventarc_trigger"]["bucket"]["depends_on"] == ["${time_sleep.event_grants}"]
    for kind, name in [("google_service_account_iam_member", "pubsub_mints_tokens"),
                       ("google_pubsub_topic_iam_member", "dead_letter_publisher"),
                       ("google_pubsub_subscription_iam_member", "dead_letter_subscriber")]:
        assert resources[kind][name]["depends_on"] == ["${time_sleep.service_agents}"], name  # the Pub/Sub agent
    for path, source in [("triggers.tf", 'data "google_storage_project_service_account" "gcs" {\n  depends_on = '
                                         '[time_sleep.service_agents]'),
                         ("main.tf", 'data "google_project" "this" {\n  depends_on = [google_project_service.api]')]:
        assert source in (TF / path).read_text(), path
    assert "hashicorp/time" in (TF / "main.tf").read_text()


def test_the_resource_manager_api_is_enabled_and_the_readme_says_it_comes_first() -> None:
    assert '"cloudresourcemanager.googleapis.com"' in (TF / "apis.tf").read_text()
    deploy = (REPO / "README.md").read_text().split("## Deploying to Google Cloud", 1)[1].split("\n## ", 1)[0]
    first = deploy.index("gcloud services enable cloudresourcemanager.googleapis.com")
    assert first < deploy.index("terraform apply"), "the API is enabled before the first apply"
    assert "--source functions/" not in deploy and "--source build/" in deploy


def plan_bundles(build_dir: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    """`terraform plan` of bundles.tf alone (terraform_data is built in: no provider, no network)."""
    tmp.mkdir()
    for name in ("targets.tf", "bundles.tf"):
        shutil.copy(TF / name, tmp)
    (tmp / "stub.tf").write_text('variable "build_dir" {\n  type = string\n}\n')
    run = {"cwd": tmp, "env": OFFLINE, "capture_output": True, "text": True, "timeout": 120}
    assert subprocess.run([terraform(), "init", "-input=false"], **run).returncode == 0  # type: ignore[call-overload]
    return subprocess.run([terraform(), "plan", "-input=false", "-no-color", f"-var=build_dir={build_dir}"],
                          **run)  # type: ignore[call-overload]


def test_a_plan_without_the_bundles_says_to_build_them(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "web.zip").write_bytes(b"PK")
    result = plan_bundles(build, tmp_path / "a")
    message = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "Build them first: `nox -s bundles`" in message, message
    assert "register.zip" in message and "web.zip," not in message
    for name in TARGETS:
        (build / f"{name}.zip").write_bytes(b"PK")
    result = plan_bundles(build, tmp_path / "b")
    assert result.returncode == 0, result.stdout + result.stderr
    source = load()["resource"]["google_storage_bucket_object"]["source"]
    assert "try(filemd5(" in source["name"] and source["depends_on"] == ["${terraform_data.bundles}"]


def test_the_rehearsal_reads_terraform_from_many_threads_at_once() -> None:
    """The rehearsal starts its functions from a thread pool; hcl2's lark parser is shared and not thread-safe, and
    a CI run saw a thread get another file's tree (`common_env` read as a list). Every thread gets the file."""
    from concurrent.futures import ThreadPoolExecutor

    from infra import cloud_env
    names = sorted(p.name for p in cloud_env.TF.glob("*.tf"))
    expected = {name: hcl2.loads((cloud_env.TF / name).read_text()) for name in names}
    for _ in range(5):
        cloud_env._parsed.cache_clear()
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(cloud_env._parsed, names * 3))
        assert got == [dict(cloud_env._unquote(expected[name])) for name in names * 3]
