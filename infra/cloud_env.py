"""The cloud's settings, read from infra/terraform itself, so the cloud rehearsal cannot drift from the deployment.

Per-target settings come from `targets.tf` (literals), every function's environment from `environment.tf`, the
queues' retry and dead-letter policy from `triggers.tf`. Values are literals or plain `var.`/`local.` references,
read as written; the two computed ones (CORS_ORIGINS, API_ENDPOINTS) are computed here the way environment.tf
does, and tests/test_terraform.py evaluates that file with terraform and checks both give the same environment.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from pathlib import Path
from typing import Any

import hcl2

TF = Path(__file__).resolve().parent / "terraform"
REFERENCE = re.compile(r"\$\{(var|local)\.(\w+)\}")
COMPUTED = {"CORS_ORIGINS", "API_ENDPOINTS"}


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


_PARSING = threading.Lock()


@functools.cache
def _parsed(name: str) -> dict[str, Any]:
    """Parsed once, one file at a time: hcl2's shared lark parser is not thread-safe (the rehearsal starts its
    functions from a thread pool, and two threads parsing at once got each other's trees)."""
    with _PARSING, open(TF / name) as f:
        return dict(_unquote(hcl2.load(f)))


def _locals(name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _parsed(name).get("locals", []):
        merged.update(block)
    return merged


def resolve(value: Any, variables: dict[str, Any], scope: dict[str, Any]) -> Any:
    """A literal, or a plain var./local. reference looked up; anything else is refused (it would need terraform)."""
    if isinstance(value, dict):
        return {k: resolve(v, variables, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables, scope) for v in value]
    if isinstance(value, str) and "${" in value:
        found = REFERENCE.fullmatch(value)
        if not found:
            raise ValueError(f"the cloud rehearsal reads {value!r} as written: keep infra/terraform values literals "
                             "or plain var./local. references")
        table = variables if found[1] == "var" else scope
        return resolve(table[found[2]], variables, scope)
    return value


def variable_defaults() -> dict[str, Any]:
    return {name: spec.get("default") for block in _parsed("variables.tf").get("variable", [])
            for name, spec in block.items()}


@functools.cache
def functions() -> dict[str, dict[str, Any]]:
    """Each target's settings from targets.tf: `target_defaults` merged with its entry, references resolved."""
    scope = _locals("targets.tf")
    return {name: resolve({**scope["target_defaults"], **settings}, {}, scope)
            for name, settings in scope["targets"].items()}


def web_routes() -> dict[str, str]:
    return dict(_locals("targets.tf")["web_routes"])


def environment(name: str, urls: dict[str, str], variables: dict[str, Any]) -> dict[str, str]:
    """The environment Terraform gives function `name` (environment.tf's function_env), with `urls` the functions'
    URLs and `variables` the Terraform variables (project, bucket_name, admin_username, cors_origins)."""
    env = _locals("environment.tf")
    scope = {**_locals("targets.tf"), **env}
    fn = functions()[name]
    merged = dict(resolve(env["common_env"], variables, scope))
    if fn["trigger"] == "http":  # public_env: the console's own origin first, then the added ones
        merged["CORS_ORIGINS"] = ",".join(dict.fromkeys([urls["web"], *variables.get("cors_origins", [])]))
    merged.update(fn["env"])
    if name == "web":  # computed_env: compact JSON, keys sorted, as jsonencode writes a map
        merged["API_ENDPOINTS"] = json.dumps({route: urls[target] for route, target in sorted(web_routes().items())},
                                             separators=(",", ":"))
    return {k: str(v) for k, v in merged.items()}


def queue_policy() -> dict[str, Any]:
    """The push subscriptions' retry and dead-letter policy (triggers.tf), in the Pub/Sub REST API's terms."""
    push = next(block["google_pubsub_subscription"]["push"] for block in _parsed("triggers.tf")["resource"]
                if "google_pubsub_subscription" in block)
    retry = push["retry_policy"][0]
    dead_letter = push["dynamic"][0]["dead_letter_policy"]["content"][0]
    return {"minimumBackoff": retry["minimum_backoff"], "maximumBackoff": retry["maximum_backoff"],
            "maxDeliveryAttempts": int(dead_letter["max_delivery_attempts"])}


def ack_deadline(name: str) -> int:
    """triggers.tf's `min(600, max(10, each.value.timeout))`."""
    return min(600, max(10, int(functions()[name]["timeout"])))


def schedule_seconds(name: str) -> float:
    """The period of a schedule target's cron (`*/N * * * *` or `* * * * *`), in seconds."""
    minute = str(functions()[name]["schedule"]).split()[0]
    return 60.0 * (int(minute[2:]) if minute.startswith("*/") else 1)


def topics() -> set[str]:
    """targets.tf's `topics`: every topic a function reads, dead-letters to or publishes to."""
    return {t for fn in functions().values() for t in [fn["topic"], fn["dead_letter_topic"], *fn["publishes"]] if t}
