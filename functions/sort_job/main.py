"""The sort functions.

- `sort_job` (HTTP): `POST /jobs` (or `/classification-job`) creates a job; `GET /jobs/<id>` polls it.
- `sort_worker` (CloudEvent): sorts one image of a job; delivered by the queue (local, Pub/Sub push, SQS relay).
- `on_upload` (CloudEvent): labels a new object under the watched prefix (GCS, GCS via Pub/Sub, S3 events).
"""

import logging

import flask
import functions_framework
from cloudevents.http import CloudEvent

from common import accounts, errors, jobs, web

log = logging.getLogger("imageclassify.sort_job")


@functions_framework.http
@web.endpoint
def sort_job(request: flask.Request) -> flask.Response:
    accounts.bootstrap_admin()
    path = request.path.rstrip("/")
    job_id = path.rsplit("/", 1)[-1]
    if web.path_is(request, "jobs", "classification-job"):
        web.require_method(request, "POST")
        body = web.json_body(request)
        job = jobs.create_job(accounts.authenticate(request, body), body)
        return web.respond({**job.public(), "id": job.id}, 202, {"Location": f"{path}/{job.id}"})
    web.require_method(request, "GET")
    credentials = web.json_body(request, required=False) if request.content_length else None
    return web.respond(jobs.get_job(accounts.authenticate(request, credentials), job_id).public())


@functions_framework.cloud_event
def sort_worker(event: CloudEvent) -> None:
    try:
        message, _ = jobs.event_data(event)
    except errors.BadRequest as exc:
        log.error("dropping an undecodable event %s: %s", event["id"], exc.message)
        return  # acknowledged: redelivering it would never succeed
    jobs.handle_image(message)  # transient failures raise, so the queue delivers the message again


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    try:
        objects = jobs.uploaded_objects(event)
    except (errors.BadRequest, KeyError, TypeError, AttributeError) as exc:
        log.error("dropping an unreadable upload event %s: %s", event["id"], exc)
        return
    for bucket, key in objects:
        jobs.label_upload(bucket, key)
