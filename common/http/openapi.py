"""The API description: OpenAPI 3.1 for every route, request form and reply, served as `GET /openapi.json`.

Written as data (with the schemas in `common/http/schemas.py`) rather than
generated from the handlers, because the functions are separate deployments
with no shared router to introspect. The tests keep it honest: every route the
local stack dispatches must be described here, real replies must validate
against it, and schemathesis fuzzes the live stack from it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from common.http import account_api, openapi_admin
from common.http.schemas import SCHEMAS, Schema, ref

Security = list[dict[str, list[str]]]
AUTH: Security = [{"bearer": []}, {"basic": []}]
BASIC: Security = [{"basic": []}]
ERRORS = {
    400: "Bad input: the message names the field and the rule.",
    401: "Missing or wrong credentials.",
    402: "Not enough tokens (`insufficient_tokens`, with `balance` and `needed`).",
    403: "Not allowed (e.g. refill by a non-admin, `quota_exceeded`, `insufficient_scope` for a `classify` key, "
         "`wrong_password`).",
    404: "No such user, job, model or file (another user's is a 404 too).",
    409: "Conflict: a name already taken, `model_not_ready`, `path_conflict` (a file and a folder of one name), "
         "or `output_folder_taken` (a file where a job's class folder goes).",
    413: "The body is larger than the limit.",
    415: "Not an accepted Content-Type, or not an image (`not_an_image`).",
    422: "Undecodable image, too many pixels, or an Idempotency-Key reused for a different request.",
    429: "Throttled (password guessing, sign-ups); see Retry-After.",
    502: "The remote image could not be fetched.",
    504: "The remote image took too long.",
}
JSON = "application/json"


def reply(description: str, schema: Schema | None = None, media: str = JSON,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    if headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return out


def op(op_id: str, tag: str, summary: str, ok: dict[int, dict[str, Any]], fails: tuple[int, ...] = (),
       body: dict[str, Schema] | None = None, security: Security | None = AUTH,
       params: list[dict[str, Any]] | None = None, body_required: bool = True) -> dict[str, Any]:
    """One operation; every refusal (listed or not: `default`) is the error envelope."""
    responses: dict[str, Any] = {str(status): r for status, r in ok.items()}
    responses.update({str(status): {"$ref": f"#/components/responses/E{status}"} for status in fails})
    responses["default"] = {"$ref": "#/components/responses/Error"}
    out: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": summary, "responses": responses,
                           "security": security if security is not None else []}
    if body is not None:
        out["requestBody"] = {"required": body_required,
                              "content": {media: {"schema": schema} for media, schema in body.items()}}
    if params:
        out["parameters"] = params
    return out


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200}}


IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "description": "A retry with the same key and request replays the first reply and is free.",
               "schema": {"type": "string", "maxLength": 200}}
IMAGE_BODY = {"type": "string", "contentMediaType": "image/*"}
SEED_FIELDS: dict[str, Schema] = dict(SCHEMAS["SeedForm"]["properties"])
BALANCE_HEADERS = {"X-Tokens-Remaining": "The balance after this request.", "X-Model": "The model that answered."}
CLASSIFY_FAILS = (400, 401, 402, 404, 409, 413, 415, 422, 502, 504)
JOB_ID = path_param("id", "The job's id, from POST /jobs.")
MODEL = path_param("name", "A model name.")
SESSION_ID = path_param("id", "The session's id, from POST /sessions.")
FILE = path_param("path", "A path in your space; may contain '/' (e.g. train/cat/1.jpg).")


def seed_form(field: str) -> Schema:
    """A seed route's multipart form: its one image field, and an optional model."""
    return {"type": "object", "required": [field],
            "properties": {**SEED_FIELDS, field: {"type": "string", "contentMediaType": "image/*"}}}


def _job_ops(base: str, seed: bool) -> dict[str, Any]:
    prefix = "seed_" if seed else ""
    ops = {
        base: {"post": op(f"{prefix}create_job", "jobs", "Sort a folder of your space into class folders", {
            202: reply("Queued; tokens reserved for every image.", ref("Job"), headers={"Location": "The job's URL."}),
        }, (400, 401, 402, 404, 409), {JSON: ref("JobRequest")})},
        f"{base}/{{id}}": {"get": op(f"{prefix}get_job", "jobs", "Poll a job", {200: reply("The job.", ref("Job"))},
                                     (401, 404), params=[JOB_ID])},
    }
    if not seed:
        ops[f"{base}/{{id}}"]["delete"] = op("cancel_job", "jobs", "Cancel a job; unsorted images are refunded",
                                             {200: reply("The job, now cancelled.", ref("Job"))}, (401, 404),
                                             params=[JOB_ID])
    return ops


def _paths() -> dict[str, Any]:
    credentials = {JSON: ref("Credentials")}
    return {
        "/register": {"post": op("register", "accounts", "Create an account (5 free tokens)", {
            201: reply("Created; the API key is shown once.", ref("Registered"))}, (400, 409, 429), credentials,
            security=[])},
        "/api-key": {"post": op("rotate_api_key", "accounts", "Sign in with a password; get a new API key", {
            200: reply("A new API key; the previous one stops working.", ref("ApiKey"))}, (401, 429),
            security=BASIC)},
        "/sessions": {"post": op("sign_in_console", "accounts", "Sign in with a password; get a session key of "
                                 "your own (the API key stays as it is)", {
            201: reply("A session key for this sign-in, shown once; revoke it with DELETE /sessions/{id}.",
                       ref("Session"))}, (401, 429), credentials, security=BASIC, body_required=False)},
        "/sessions/{id}": {"delete": op("sign_out_console", "accounts", "Sign out: the session key stops working",
                                        {204: reply("Revoked")}, (401, 404), params=[SESSION_ID])},
        "/tokens": {"get": op("get_balance", "tokens", "Your balance (free)", {200: reply("Balance", ref("Balance"))},
                              (401,))},
        "/token": {"post": op("seed_balance", "tokens", "Your balance, seed style (credentials may be in the body)", {
            200: reply("Balance", ref("Balance"))}, (401,), credentials, body_required=False)},
        "/refill": {"post": op("refill", "tokens", "Add tokens to an account (admins only)", {
            200: reply("The account's new balance.", ref("Balance"))}, (400, 401, 403, 404), {JSON: ref("Refill")})},
        "/classify": {"post": op("classify", "classify", "Classify one image or a batch (1 token per image)", {
            200: reply("Predictions, highest first.", {"oneOf": [ref("Classified"), ref("BatchClassified")]})},
            CLASSIFY_FAILS, {JSON: ref("ClassifyJson"), "multipart/form-data": ref("ClassifyForm"),
                             "image/*": IMAGE_BODY, "application/octet-stream": IMAGE_BODY},
            params=[IDEMPOTENCY])},
        "/upload": {"post": op("seed_upload", "seeds", "Seed 001: multipart field `image`, the top three", {
            200: reply("Top three, seed 001's shape.", ref("UploadReply"), headers=BALANCE_HEADERS)}, CLASSIFY_FAILS,
            {"multipart/form-data": seed_form("image")},
            params=[IDEMPOTENCY])},
        "/predict": {"post": op("seed_predict", "seeds", "Seed 002/003: multipart field `file`", {
            200: reply("Top three (seed 002), or the best class of a custom model (seed 003).", ref("PredictReply"),
                       headers=BALANCE_HEADERS)}, CLASSIFY_FAILS,
            {"multipart/form-data": seed_form("file")},
            params=[IDEMPOTENCY])},
        **_job_ops("/jobs", seed=False),
        **_job_ops("/classification-job", seed=True),
        "/models": {
            "get": op("list_models", "models", "The built-in models and your own", {
                200: reply("Models", ref("ModelList"))}, (401,)),
            "post": op("train_model", "models", "Train a model on a folder of your space (1 token per image)", {
                202: reply("Queued", ref("Model"), headers={"Location": "/models/<name>"})},
                (400, 401, 402, 404, 409), {JSON: ref("ModelRequest")}),
        },
        "/models/{name}": {
            "get": op("get_model", "models", "A model: status, progress, split and metrics", {
                200: reply("The model", ref("Model"))}, (401, 404), params=[MODEL]),
            "delete": op("delete_model", "models", "Delete your model", {204: reply("Deleted")}, (401, 404),
                         params=[MODEL]),
        },
        "/models/{name}/confusion.png": {"get": op("get_confusion_png", "models", "The confusion matrix as a PNG", {
            200: reply("PNG", {"type": "string", "contentMediaType": "image/png"}, "image/png")}, (401, 404, 409),
            params=[MODEL])},
        "/files": {"get": op("list_files", "files", "List your space (paged)", {200: reply("Files", ref("FileList"))},
                             (400, 401), params=[
            {"name": "prefix", "in": "query", "schema": {"type": "string", "default": ""}},
            {"name": "next", "in": "query", "schema": {"type": "string"}, "description": "From the previous page."}])},
        "/files/{path}": {
            "put": op("put_file", "files", "Store an image in your space (raw body; free, quota)", {
                201: reply("Stored", ref("File"))}, (400, 401, 403, 409, 413, 415), {"image/*": IMAGE_BODY},
                params=[FILE]),
            "get": op("get_file", "files", "Read a file of your space", {
                200: reply("The bytes", {"type": "string"}, "application/octet-stream")}, (400, 401, 404),
                params=[FILE]),
            "delete": op("delete_file", "files", "Delete a file of your space", {204: reply("Deleted")},
                         (400, 401, 404), params=[FILE]),
            "post": op("upload_form", "files", "A form to upload a larger image straight to the bucket (S3 only: "
                       "on AWS a request takes about 4.5 MB of image; free, quota reserved)", {
                201: reply("The form", ref("UploadForm"))}, (400, 401, 403, 413), {JSON: ref("UploadSize")},
                params=[FILE]),
        },
        **_usage_paths(),
        **_web_paths(),
        **openapi_admin.paths(op, reply),
        **account_api.paths(op, reply),
    }


def _usage_paths() -> dict[str, Any]:
    """The usage history and the webhook routes (`tokens` function)."""
    query = [{"name": "from", "in": "query", "schema": {"type": "string", "format": "date"},
              "description": "First day (UTC), YYYY-MM-DD; 29 days before `to` by default."},
             {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"},
              "description": "Last day (UTC), YYYY-MM-DD; today by default. At most 366 days in all."},
             {"name": "group", "in": "query", "schema": {"enum": ["day", "key", "kind"], "default": "day"}}]
    delivery = path_param("id", "The delivery's (the event's) id, from GET /webhooks/deliveries.")
    secret = {200: reply("The secret (`whsec_...`) your receiver verifies ImageClassify-Signature with.",
                         ref("WebhookSecret"))}
    return {
        "/usage": {"get": op("get_usage", "usage", "Tokens spent and refunded per day, API key or kind of work", {
            200: reply("The usage rows.", ref("UsageReport"))}, (400, 401), params=query)},
        "/usage.csv": {"get": op("get_usage_csv", "usage", "The same rows as CSV (a header line first)", {
            200: reply("CSV", {"type": "string"}, "text/csv")}, (400, 401), params=query)},
        "/webhooks/secret": {
            "get": op("get_webhook_secret", "webhooks", "Your webhook signing secret", secret, (401,)),
            "post": op("rotate_webhook_secret", "webhooks", "A new webhook signing secret (the old one stops)",
                       secret, (401,)),
        },
        "/webhooks/deliveries": {"get": op("list_webhook_deliveries", "webhooks", "Your latest webhook deliveries", {
            200: reply("Newest first.", ref("DeliveryList"))}, (401,))},
        "/webhooks/deliveries/{id}": {"get": op("get_webhook_delivery", "webhooks", "One webhook delivery", {
            200: reply("The delivery.", ref("Delivery"))}, (401, 404), params=[delivery])},
    }


def _web_paths() -> dict[str, Any]:
    def page(op_id: str, summary: str, media: str, schema: Schema | None = None) -> dict[str, Any]:
        return {"get": op(op_id, "web", summary, {200: reply(summary, schema or {"type": "string"}, media)},
                          security=[])}

    return {
        "/": page("console", "The web console", "text/html"),
        "/docs": page("docs", "This description, rendered", "text/html"),
        "/openapi.json": page("openapi", "This description (OpenAPI 3.1)", JSON, {"type": "object"}),
        "/config.json": page("console_config", "Where the console finds each route", JSON, ref("EndpointMap")),
        "/assets/{asset}": {"get": {**page("asset", "The console's scripts, styles and icons", "*/*")["get"],
                                    "parameters": [path_param("asset", "A file name, e.g. console.js")]}},
    }


@functools.cache
def _spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ImageClassify Functions", "version": "1.0.0", "description": (
            "A metered image-classification API: one token per image classified. Authenticate with "
            "`Authorization: Bearer <api key>`, HTTP Basic, or `username`/`password` in a JSON body. "
            "Every error is `{\"error\": {\"status\", \"code\", \"message\"}}` with a real HTTP status.")},
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {
            "schemas": {**SCHEMAS, **openapi_admin.SCHEMAS, **account_api.SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The API key"},
                                "basic": {"type": "http", "scheme": "basic"}},
            "responses": {"Error": reply("Any refusal: the error envelope.", ref("Error")),
                          **{f"E{status}": reply(text, ref("Error")) for status, text in ERRORS.items()}},
        },
    }


def spec() -> dict[str, Any]:
    """The whole description (a fresh copy: callers may not change the cached one)."""
    return copy.deepcopy(_spec())
