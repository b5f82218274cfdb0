"""The sort functions.

- `sort_job` (HTTP): `POST /jobs` (or `/classification-job`) creates a job; `GET /jobs/<id>` polls it.
- `sort_worker` (CloudEvent): sorts one image of a job; delivered by the queue (local, Pub/Sub push, SQS relay).
- `on_upload` (CloudEvent): labels a new object under the watched prefix (GCS, GCS via Pub/Sub, S3 events).
"""

import logging

import flask
import functions_framework
from cloudevents.http import CloudEvent

from common import errors, events, httpauth, jobs, labelling, sorting, web

log = logging.getLogger("imageclassify.sort_job")


@functions_framework.http
@web.endpoint
def sort_job(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/")
    if web.path_is(request, "jobs", "classification-job"):
        web.require_method(request, "POST")
        job = jobs.create_job(httpauth.authenticate(request), web.json_body(request))
        return web.respond(job.public(), 202, {"Location": f"{path}/{job.id}"})
    web.require_method(request, "GET")
    return web.respond(jobs.get_job(httpauth.authenticate(request), path.rsplit("/", 1)[-1]).public())


@functions_framework.cloud_event
def sort_worker(event: CloudEvent) -> None:
    try:
        message, _ = events.event_data(event)
    except errors.BadRequest as exc:
        log.error("dropping an undecodable event %s: %s", event["id"], exc.message)
        return  # acknowledged: redelivering it would never succeed
    sorting.handle_image(message)  # transient failures raise, so the queue delivers the message again


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    try:
        objects = events.uploaded_objects(event)
    except (errors.BadRequest, KeyError, TypeError, AttributeError) as exc:
        log.error("dropping an unreadable upload event %s: %s", event["id"], exc)
        return
    for bucket, key in objects:
        labelling.label_upload(bucket, key)
