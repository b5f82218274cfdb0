"""The JSON Schemas of the API description (`common/http/openapi.py`): every request body and reply of the contract.

The JSON request bodies are rendered from the msgspec Structs that validate them (`common/*/bodies.py`), so a
limit is declared once. The replies are kept as data next to the code that produces them, and checked against
real replies by the tests (tests/test_openapi.py), so the description cannot drift from what the functions
answer. Objects stay open (`additionalProperties` allowed) where the contract says "..." so that adding a field
is not a break.
"""

from __future__ import annotations

from typing import Any

import msgspec

from common.accounts.bodies import ContractRefill, Credentials, SeedRefill
from common.accounts.reports import REPLIES
from common.classify.bodies import ClassifyOptions, ImageSource
from common.core.bodies import ModelName
from common.jobs.bodies import JobRequest
from common.training.bodies import ModelRequest

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str], props: dict[str, Schema], **extra: Any) -> Schema:
    return {"type": "object", "required": required, "properties": props, **extra}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
FRACTION: Schema = {"type": "number", "minimum": 0, "maximum": 1}
BODIES = (Credentials, ContractRefill, SeedRefill, JobRequest, ModelRequest, ClassifyOptions, ImageSource)
_, GENERATED = msgspec.json.schema_components(BODIES, ref_template="#/components/schemas/{name}")
_, REPORTS = msgspec.json.schema_components(REPLIES, ref_template="#/components/schemas/{name}")
MODEL_NAME: Schema = msgspec.json.schema(ModelName)
COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
OPTIONS: dict[str, Schema] = GENERATED.pop("ClassifyOptions")["properties"]
# each source alone, without the null that marks the Struct's unset fields
SOURCES: dict[str, Schema] = {name: spec["anyOf"][0]
                              for name, spec in GENERATED.pop("ImageSource")["properties"].items()}
SOURCE = {"oneOf": [obj([name], {name: schema}) for name, schema in SOURCES.items()]}

SCHEMAS: dict[str, Schema] = {
    "ErrorDetail": obj(["status", "code", "message"], {
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string", "examples": ["insufficient_tokens"]},
        "message": {"type": "string", "description": "Says what to do; never echoes the request."},
        "balance": INT, "needed": INT}),
    "Error": obj(["error"], {"error": ref("ErrorDetail")}),
    **GENERATED,
    **REPORTS,
    "Registered": obj(["username", "tokens", "api_key"], {
        "username": STR, "tokens": INT, "api_key": {"type": "string", "description": "Shown once."}}),
    "ApiKey": obj(["username", "api_key"], {"username": STR, "api_key": STR}),
    "Session": obj(["username", "id", "name", "prefix", "scope", "created", "expires", "key"], {
        "username": STR, "id": STR, "name": {"const": "session"}, "prefix": STR, "scope": STR,
        "created": {"type": "number"}, "expires": {"type": "number"}, "tokens": INT,
        "key": {"type": "string", "description": "Shown once; send it as Bearer until DELETE /sessions/{id}."}}),
    "Balance": obj(["username", "tokens"], {"username": STR, "tokens": {"type": "integer", "minimum": 0}}),
    "Refill": {"oneOf": [ref("ContractRefill"), ref("SeedRefill")]},
    "ClassifyJson": {"oneOf": [
        {**SOURCE, "properties": {**OPTIONS}, "description": "One image."},
        obj(["images"], {"images": {"type": "array", "minItems": 1, "maxItems": 16, "items": SOURCE}, **OPTIONS},
            description="A batch: charged per image classified, each item answered on its own."),
    ]},
    "ClassifyForm": obj([], {
        "file": {"type": "string", "contentMediaType": "application/octet-stream"},
        "image": {"type": "string", "contentMediaType": "application/octet-stream", "description": "same as file"},
        "top_k": STR, "min_score": STR, "model": STR}, description="Exactly one of file or image."),
    "Prediction": obj(["label", "score", "class_id"], {
        "label": STR, "score": FRACTION, "class_id": INT, "wnid": {"type": "string", "pattern": "^n[0-9]{8}$"}}),
    "Classified": obj(["model", "predictions", "tokens_remaining"], {
        "model": STR, "predictions": {"type": "array", "items": ref("Prediction")}, "tokens_remaining": INT}),
    "BatchClassified": obj(["model", "results", "tokens_remaining"], {
        "model": STR, "tokens_remaining": INT,
        "results": {"type": "array", "items": {"oneOf": [
            obj(["index", "predictions"], {"index": INT, "predictions": {"type": "array", "items": ref("Prediction")}}),
            obj(["index", "error"], {"index": INT, "error": ref("ErrorDetail")}),
        ]}}}),
    "Job": obj(["id", "status", "total", "processed", "matched", "unmatched", "failed", "percentage"], {
        "id": STR, "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
        "total": INT, "processed": INT, "matched": COUNTS, "unmatched": INT, "failed": INT,
        "not_written": {**INT, "description": "Images classified (and charged) whose output was not written: a "
                        "different file of yours was at <class>/<path>, or the source was deleted meanwhile."},
        "percentage": {"type": "number", "minimum": 0, "maximum": 100},
        "classes": {"type": "array", "items": STR}, "source": STR, "min_score": {"type": "number"},
        "model": {"type": ["string", "null"]}, "created": {"type": "number"},
        "ended": {"type": "number", "description": "When the job finished (seconds since the epoch, like `created`); "
                  "absent while it runs."}}),
    "Progress": obj(["done", "total", "percentage"], {"done": INT, "total": INT, "percentage": {"type": "number"}}),
    "ClassMetrics": obj([], {k: {"type": ["number", "null"]} for k in ("precision", "recall", "f1", "roc_auc")}
                        | {"support": INT}),
    "Metrics": obj(["accuracy", "macro_f1", "per_class", "confusion_matrix"], {
        "accuracy": FRACTION, "macro_f1": FRACTION,
        "per_class": {"type": "object", "additionalProperties": ref("ClassMetrics")},
        "confusion_matrix": obj(["labels", "matrix"], {
            "labels": {"type": "array", "items": STR},
            "matrix": {"type": "array", "items": {"type": "array", "items": INT}, "description": "rows = true class"}}),
    }),
    "Model": obj(["name", "status"], {
        "name": STR, "status": {"type": "string", "enum": ["queued", "embedding", "training", "ready", "failed"]},
        "builtin": BOOL, "error": STR, "progress": ref("Progress"),
        "classes": {"oneOf": [{"type": "array", "items": STR}, INT]}, "images": INT,
        "split": obj(["train", "validation", "test"], {"train": INT, "validation": INT, "test": INT}),
        "metrics": {"oneOf": [ref("Metrics"), {"type": "null"}]}}),
    "ModelList": obj(["models"], {"models": {"type": "array", "items": {"oneOf": [ref("Model"), STR]}}}),
    "File": obj(["path", "size"], {"path": STR, "size": {"type": "integer", "minimum": 0}}),
    "UploadSize": obj(["size"], {"size": {"type": "integer", "minimum": 1, "description": "The file's bytes"}}),
    "UploadForm": obj(["path", "max_bytes", "expires_in", "upload"], {
        "path": STR, "max_bytes": INT, "expires_in": {"type": "integer", "description": "Seconds the form is valid"},
        "upload": obj(["url", "fields"], {"url": STR, "fields": {
            "type": "object", "additionalProperties": STR,
            "description": "POST these form fields to `url`, then the file as field `file` (last)"}})}),
    "FileList": obj(["files", "next"], {
        "files": {"type": "array", "items": ref("File")},
        "next": {"type": ["string", "null"], "description": "Pass as ?next= for the next page"}}),
    "SeedForm": obj([], {"model": {**MODEL_NAME, "description": "a custom model: /predict answers seed 003's shape"}}),
    "UploadReply": {"type": "object", "description": "Seed 001: the top three.",
                    "patternProperties": {"^prediction_[1-3]$": obj(["predicted_label", "confidence_level"], {
                        "predicted_label": STR, "confidence_level": FRACTION})},
                    "additionalProperties": False},
    "PredictReply": {"oneOf": [
        {"type": "array", "maxItems": 3, "description": "Seed 002: the top three (built-in models).",
         "items": obj(["label", "score"], {"label": STR, "score": FRACTION}, additionalProperties=False)},
        obj(["predicted_class", "confidence_score"], {"predicted_class": STR, "confidence_score": FRACTION},
            description="Seed 003: the best class of a custom model.", additionalProperties=False),
    ]},
    "EndpointMap": obj(["endpoints"], {"endpoints": {
        "type": "object", "additionalProperties": {"type": "string"},
        "description": "First path segment -> base URL of the function serving it; empty = this origin."}}),
}
