"""Follow a sort job or a training run until it ends, with a live progress bar when interactive."""

from __future__ import annotations

import time
from typing import Any

from imageclassify_client.api import Client
from imageclassify_client.output import Output

JOB_FINAL = {"done", "cancelled", "failed"}
MODEL_FINAL = {"ready", "failed"}


def watch_job(client: Client, out: Output, job: dict[str, Any], interval: float) -> dict[str, Any]:
    """Poll `GET /jobs/<id>` until the job is done, cancelled or failed; its last status."""
    with out.progress(f"job {job['id']}", job.get("total") or None) as bar:
        while True:
            bar.update(total=job.get("total") or None, completed=job.get("processed", 0),
                       description=f"job {job['id'][:8]} {job.get('status', '')}")
            if job.get("status") in JOB_FINAL:
                return job
            time.sleep(interval)
            job = client.job(str(job["id"]))


def watch_model(client: Client, out: Output, name: str, interval: float) -> dict[str, Any]:
    """Poll `GET /models/<name>` until the model is ready or failed; its last status."""
    with out.progress(f"model {name}", None) as bar:
        while True:
            model = client.model(name)
            progress = model.get("progress") or {}
            bar.update(total=progress.get("total") or None, completed=progress.get("done", 0),
                       description=f"model {name} {model.get('status', '')}")
            if model.get("status") in MODEL_FINAL:
                return model
            time.sleep(interval)
