"""The cloud as it deploys, rehearsed on one machine: `nox -s serve -- --cloud` (or `python -m infra.rehearsal`).

Every function runs from its own built bundle (infra/bundles.py), in its own virtualenv holding only that
bundle's requirements (cached by the requirements' hash, so the second start is fast), under functions-framework,
each on its own port: its own origin, as each Cloud Run service has its own URL. Behind them: the Firestore and
Pub/Sub emulators and fake-gcs-server. The wiring is read from infra/terraform (infra/cloud_env.py): the same
environment variables, CORS origins and API_ENDPOINTS; push subscriptions with the same ack deadline, retry and
dead-letter policy (the Pub/Sub emulator honours both for push); uploads under WATCH_PREFIX reaching
`on_upload` as triggers.tf wires them (fake-gcs-server's Cloud Storage notifications to Pub/Sub, delivered by a
stand-in for Eventarc); the sweeper called on its schedule, as Cloud Scheduler does.

What differs from the cloud (each the nearest real thing on one machine):
- no IAM: internal functions answer anyone on the loopback (the cloud: internal ingress and OIDC callers); a
  function gets Firestore's or the bucket's emulator only if targets.tf grants it that service (`firestore`,
  `bucket_role`), and no credentials, so using a service it has no role for fails as it would in the cloud
  (at the client's creation rather than at its first call); but a viewer can still write to the bucket, and
  every function can publish (in the cloud only those with `publishes`);
- secrets are environment variables of the functions that list them (the cloud: Secret Manager);
- no front adding X-Forwarded-For (TRUSTED_PROXIES=1 as deployed), and one instance per function unless
  `--instances name=N` puts N behind a round-robin front; no scale to zero, no cold start per request;
- pushes carry no OIDC token and no deliveryAttempt; dead-lettering counts the emulator's own delivery attempts;
- plain http on 127.0.0.1 ports instead of https run.app URLs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from infra import bundle_check, bundles, cloud_env, fronts, processes
from infra.targets import REPO

UPLOADS_TOPIC = "bucket-uploads"


@dataclass
class Rehearsal:
    urls: dict[str, str]  # each function's URL (a round-robin front's for several instances)
    instances: dict[str, list[processes.Server]]
    emulators: dict[str, processes.Server]
    fronts: list[fronts.Front] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def servers(self) -> list[processes.Server]:
        return [*(s for servers in self.instances.values() for s in servers), *self.emulators.values()]

    def processes(self) -> int:
        """The servers it runs (each function instance, each emulator), plus itself."""
        return len(self.servers()) + 1

    def describe(self) -> dict[str, Any]:
        return {"urls": self.urls, "emulators": {n: s.url for n, s in self.emulators.items()},
                "pgids": [s.proc.pid for s in self.servers()],  # each server leads its own process group
                "instances": {n: [{"url": s.url, "log": str(s.log_path)} for s in servers]
                              for n, servers in self.instances.items()},
                "processes": self.processes()}

    def stop(self) -> None:
        self.stopping.set()
        for front in self.fronts:
            front.stop()
        running = self.servers()
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            list(pool.map(processes.Server.stop, running))


def prepare(out: Path, models_dir: Path) -> dict[str, tuple[Path, Path]]:
    """Each target's bundle (built afresh into `out`) and its venv (one per distinct requirements, cached)."""
    built = {name: bundles.build(name, out, models_dir) for name in cloud_env.functions()}
    by_requirements = {(bundle / "requirements.txt").read_bytes(): bundle / "requirements.txt"
                       for bundle in built.values()}
    with ThreadPoolExecutor(max_workers=3) as pool:
        venvs = dict(zip(by_requirements, pool.map(bundle_check.venv_for, by_requirements.values()), strict=True))
    return {name: (bundle, venvs[(bundle / "requirements.txt").read_bytes()]) for name, bundle in built.items()}


def start_emulators(project: str, bucket: str) -> dict[str, processes.Server]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        firestore, pubsub = pool.map(lambda start: start(), [processes.firestore_emulator, processes.pubsub_emulator])
    for topic in sorted(cloud_env.topics() | {UPLOADS_TOPIC}):
        requests.put(f"{pubsub.url}/v1/projects/{project}/topics/{topic}", json={}, timeout=30).raise_for_status()
    gcs = processes.fake_gcs(["-event.pubsub-project-id", project, "-event.pubsub-topic", UPLOADS_TOPIC,
                              "-event.list", "finalize"],
                             env={**os.environ, "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub.port}"})
    requests.post(f"{gcs.url}/storage/v1/b?project={project}", json={"name": bucket}, timeout=30).raise_for_status()
    return {"firestore": firestore, "pubsub": pubsub, "gcs": gcs}


def function_env(name: str, urls: dict[str, str], variables: dict[str, Any], emulators: dict[str, processes.Server],
                 secret_values: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """Terraform's environment for `name`, its secrets, and the emulators of the services it has a role for."""
    fn = cloud_env.functions()[name]
    env = cloud_env.environment(name, urls, variables)
    env.update({s: secret_values[s] for s in fn["secrets"]})
    # no credentials at all: a client of a service this function has no emulator for fails at once
    env.update(NO_GCE_CHECK="True", CLOUDSDK_CONFIG=tempfile.mkdtemp(prefix="rehearsal-gcloud-"))
    if fn["firestore"]:
        env["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{emulators['firestore'].port}"
    if fn["bucket_role"]:
        env["STORAGE_EMULATOR_HOST"] = emulators["gcs"].url
    env["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{emulators['pubsub'].port}"  # every function has the backend
    return {**env, **extra}


def subscribe(rehearsal: Rehearsal, project: str, bucket: str) -> None:
    """Push subscriptions as triggers.tf makes them, and the bucket's notifications through the Eventarc stand-in."""
    base = f"{rehearsal.emulators['pubsub'].url}/v1/projects/{project}"
    policy = cloud_env.queue_policy()
    subscriptions = {}
    for name, fn in cloud_env.functions().items():
        if fn["trigger"] != "queue":
            continue
        spec: dict[str, Any] = {
            "topic": f"projects/{project}/topics/{fn['topic']}", "ackDeadlineSeconds": cloud_env.ack_deadline(name),
            "pushConfig": {"pushEndpoint": rehearsal.urls[name]},
            "retryPolicy": {"minimumBackoff": policy["minimumBackoff"], "maximumBackoff": policy["maximumBackoff"]}}
        if fn["dead_letter_topic"]:
            spec["deadLetterPolicy"] = {"deadLetterTopic": f"projects/{project}/topics/{fn['dead_letter_topic']}",
                                        "maxDeliveryAttempts": policy["maxDeliveryAttempts"]}
        subscriptions[f"{name.replace('_', '-')}-push"] = spec
    for name, fn in cloud_env.functions().items():
        if fn["trigger"] == "bucket":
            eventarc = fronts.Eventarc(bucket, fn["env"]["WATCH_PREFIX"], rehearsal.urls[name],
                                       f"//pubsub.googleapis.com/projects/{project}/topics/{UPLOADS_TOPIC}")
            rehearsal.fronts.append(eventarc)
            subscriptions[f"eventarc-{name.replace('_', '-')}"] = {
                "topic": f"projects/{project}/topics/{UPLOADS_TOPIC}", "pushConfig": {"pushEndpoint": eventarc.url},
                "ackDeadlineSeconds": cloud_env.ack_deadline(name)}
    for sub, spec in subscriptions.items():
        requests.put(f"{base}/subscriptions/{sub}", json=spec, timeout=30).raise_for_status()


def start(data_dir: Path, models_dir: Path, *, project: str = "imageclassify-rehearsal",
          bucket: str = "imageclassify-rehearsal", admin_password: str = "", instances: dict[str, int] | None = None,
          sweep_every: float | None = None, extra_env: dict[str, str] | None = None) -> Rehearsal:
    """Build, start and wire everything; returns once every function answers on its port."""
    prepared = prepare(data_dir / "bundles", models_dir)
    counts = {name: (instances or {}).get(name, 1) for name in prepared}
    ports = {name: [processes.free_port() for _ in range(n)] for name, n in counts.items()}
    urls = {name: f"http://127.0.0.1:{p[0]}" for name, p in ports.items()}
    rehearsal = Rehearsal(urls, {}, start_emulators(project, bucket))
    try:
        for name, n in counts.items():
            if n > 1:
                front = fronts.RoundRobin([f"http://127.0.0.1:{p}" for p in ports[name]])
                rehearsal.fronts.append(front)
                urls[name] = front.url
        variables = {**cloud_env.variable_defaults(), "project": project, "bucket_name": bucket}
        secret_values = {"ADMIN_PASSWORD": admin_password, "INTERNAL_SECRET": secrets.token_urlsafe(32)}
        jobs = [(name, i, port) for name, p in ports.items() for i, port in enumerate(p)]

        def launch(job: tuple[str, int, int]) -> processes.Server:
            name, i, port = job
            bundle, venv = prepared[name]
            env = function_env(name, urls, variables, rehearsal.emulators, secret_values, extra_env or {})
            return bundle_check.serve(name, bundle, venv, env, port, f"cloud-{name}-{i}")

        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            for (name, _, _), server in zip(jobs, pool.map(launch, jobs), strict=True):
                rehearsal.instances.setdefault(name, []).append(server)
        subscribe(rehearsal, project, bucket)
        for name, fn in cloud_env.functions().items():
            if fn["trigger"] == "schedule":
                fronts.scheduler(urls[name], sweep_every or cloud_env.schedule_seconds(name), rehearsal.stopping)
    except BaseException:
        rehearsal.stop()
        raise
    return rehearsal


def banner(rehearsal: Rehearsal, seconds: float, admin: tuple[str, str]) -> str:
    width = max(map(len, rehearsal.urls))
    lines = [f"  {name:<{width}}  {url}" + (f"  ({len(rehearsal.instances[name])} instances, round-robin)"
                                             if len(rehearsal.instances[name]) > 1 else "")
             for name, url in rehearsal.urls.items()]
    emulators = " ".join(f"{n}={s.url}" for n, s in rehearsal.emulators.items())
    return "\n".join([
        f"ImageClassify Functions, rehearsed as deployed "
        f"(started in {seconds:.1f} s, {rehearsal.processes()} processes)",
        f"web console: {rehearsal.urls['web']}/", "functions (each its own origin):", *lines,
        f"emulators: {emulators}", f"first admin: {admin[0]} / {admin[1]}", "Ctrl-C stops everything."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO / ".data" / "rehearsal")
    parser.add_argument("--models-dir", type=Path,
                        default=Path(os.environ.get("MODELS_DIR", REPO / ".data" / "models")))
    parser.add_argument("--project", default="imageclassify-rehearsal")
    parser.add_argument("--bucket", default="imageclassify-rehearsal")
    parser.add_argument("--instances", action="append", default=[], metavar="NAME=N",
                        help="run N instances of a function behind a round-robin front (e.g. sort_worker=2)")
    parser.add_argument("--sweep-every", type=float, help="seconds between sweeper calls (default: its schedule)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra environment variable for every function (beyond what Terraform sets)")
    parser.add_argument("--ready-file", type=Path, help="write the URLs here as JSON once everything answers")
    args = parser.parse_args()
    admin = (str(cloud_env.variable_defaults()["admin_username"]),
             os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12))
    started = time.perf_counter()
    processes.exit_on_sigterm()
    rehearsal = start(args.data_dir.resolve(), args.models_dir.resolve(), project=args.project, bucket=args.bucket,
                      admin_password=admin[1], sweep_every=args.sweep_every,
                      instances={k: int(v) for k, v in (i.split("=", 1) for i in args.instances)},
                      extra_env=dict(e.split("=", 1) for e in args.env))
    try:
        print(banner(rehearsal, time.perf_counter() - started, admin), flush=True)
        if args.ready_file:
            args.ready_file.write_text(json.dumps(rehearsal.describe()))
        signal.signal(signal.SIGINT, lambda *_: rehearsal.stopping.set())
        rehearsal.stopping.wait()
    finally:
        print("stopping ...", file=sys.stderr)
        rehearsal.stop()


if __name__ == "__main__":
    main()
