"""The sort functions:
- `sort_job` (HTTP): `POST /jobs` (or `/classification-job`) creates a job; `GET /jobs/<id>` polls it.
- `sort_worker` (CloudEvent, from the queue: local, Pub/Sub push, SQS relay): sorts one image of a job, or embeds
  a chunk of a custom model's images or fits its head.
- `sort_dead_letter` (CloudEvent): a message out of deliveries; its image (or training run) is failed, refunded.
- `sweeper` (HTTP, internal; Cloud Scheduler): refunds expired reservations and closes stalled jobs; `on_upload`
  (CloudEvent): labels a new object under the watched prefix (GCS, GCS via Pub/Sub, S3 events).
"""

import logging

import flask
import functions_framework
from cloudevents.http import CloudEvent

from common import bootstrap
from common.core import errors
from common.http import auth as httpauth
from common.http import envelope, requestlog, web
from common.jobs import events, labelling, worker
from common.jobs import service as jobs
from common.ops import sweeper as sweeping

DEPS, log = bootstrap.deps(), logging.getLogger("imageclassify.sort_job")  # DEPS: handed to the services
ROUTES = web.Routes("/jobs", "/jobs/<id>", "/classification-job", "/classification-job/<id>",
                    hint="No such endpoint: use /jobs or /jobs/<id> (or /classification-job[/<id>]).")


@functions_framework.http
@web.endpoint
def sort_job(request: flask.Request) -> flask.Response:
    _, arguments = ROUTES.match(request)
    if "id" not in arguments:
        web.require_method(request, "POST")
        job = jobs.create_job(httpauth.authenticate(request, deps=DEPS), web.json_body(request), DEPS)
        return web.respond(jobs.describe(job), 202, {"Location": f"{request.path.rstrip('/')}/{job.id}"})
    web.require_method(request, "GET", "DELETE")
    account, job_id = httpauth.authenticate(request, deps=DEPS), arguments["id"]
    if request.method == "DELETE":
        return web.respond(jobs.describe(jobs.cancel_job(account, job_id, DEPS)))
    return web.respond(jobs.describe(jobs.get_job(account, job_id, DEPS)))


def _message(event: CloudEvent) -> object:
    try:  # the framework parsed the event; event_data decodes the Pub/Sub envelope inside it
        return events.event_data(event)[0]
    except errors.BadRequest as exc:
        log.error("dropping an undecodable event %s: %s", event["id"], exc.message)
        return None  # acknowledged: redelivering it would never succeed


@functions_framework.cloud_event
@requestlog.events
def sort_worker(event: CloudEvent) -> None:
    worker.handle(_message(event), DEPS)  # transient failures raise, so the queue delivers the message again


@functions_framework.cloud_event
@requestlog.events
def sort_dead_letter(event: CloudEvent) -> None:
    worker.handle_dead_letter(_message(event), DEPS)


@functions_framework.cloud_event
@requestlog.events
def on_upload(event: CloudEvent) -> None:
    try:
        objects = events.uploaded_objects(event)
    except (errors.BadRequest, KeyError, TypeError, AttributeError) as exc:
        log.error("dropping an unreadable upload event %s: %s", event["id"], exc)
        return
    for bucket, key in objects:
        labelling.label_upload(bucket, key, envelope.present, DEPS)


@functions_framework.http
@web.endpoint
def sweeper(request: flask.Request) -> flask.Response:
    web.require_method(request, "POST")
    return web.respond(sweeping.sweep())
