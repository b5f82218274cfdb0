"""Request bodies are typed objects (common/*/bodies.py): one declaration validates and describes each body; the
JSON depth of a body is scanned once; paths are matched by werkzeug rules. Pure logic and an in-process app."""

from __future__ import annotations

from typing import Any

import flask
import pytest

from common.accounts.bodies import MAX_REFILL, Credentials, SeedRefill
from common.classify.bodies import MAX_CLASSES, MAX_TOP_K
from common.core import bodies, errors, jsonlimits
from common.http import guard, web
from common.http.openapi import spec
from common.jobs.bodies import JobRequest
from common.training.bodies import MAX_VIEWS, ModelRequest

SCHEMAS = spec()["components"]["schemas"]


def test_the_description_is_rendered_from_the_bodies_that_validate() -> None:
    augment = SCHEMAS["ModelRequest"]["properties"]["augment"]["anyOf"][0]
    assert (augment["type"], augment["maximum"]) == ("integer", MAX_VIEWS)  # it said boolean before
    assert SCHEMAS["ContractRefill"]["properties"]["amount"]["maximum"] == MAX_REFILL
    options = SCHEMAS["ClassifyJson"]["oneOf"][1]["properties"]
    assert options["top_k"]["maximum"] == MAX_TOP_K and options["classes"]["anyOf"][0]["maxItems"] == MAX_CLASSES
    assert SCHEMAS["JobRequest"]["properties"]["min_score"] == {"type": "number", "minimum": 0, "maximum": 1,
                                                                "description": SCHEMAS["JobRequest"]["properties"][
                                                                    "min_score"]["description"]}


@pytest.mark.parametrize(("kind", "body", "code"), [
    (Credentials, {"username": "alice\n", "password": "x" * 8}, "invalid_username"),
    (Credentials, {"username": "alice"}, "invalid_password"),
    (Credentials, {"username": "alice", "password": "é" * 40}, "invalid_password"),
    (JobRequest, {"classes": [], "min_score": 0.5}, "invalid_classes"),
    (JobRequest, {"classes": ["dog"], "min_score": None}, "invalid_min_score"),
    (JobRequest, {"classes": ["dog"], "min_score": True}, "invalid_min_score"),
    (ModelRequest, {"name": "pets", "augment": 9}, "bad_augment"),
    (ModelRequest, {"name": "Pets"}, "invalid_name"),
])
def test_a_wrong_field_answers_its_own_code(kind: type[bodies.Body], body: dict[str, Any], code: str) -> None:
    with pytest.raises(errors.BadRequest) as refused:
        bodies.convert(kind, body)
    assert refused.value.code == code


def test_a_field_without_its_own_message_names_itself() -> None:
    with pytest.raises(errors.BadRequest, match="^password: Expected `str | null`, got `int`.$") as refused:
        bodies.convert(SeedRefill, {"user": "bob", "refill": 1, "password": 3})
    assert refused.value.code == "invalid_body"


def test_the_json_depth_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    app = flask.Flask("depth")
    guard.install(app)

    @app.post("/echo")
    def echo() -> flask.Response:
        return web.respond(web.json_body(flask.request))

    scans: list[int] = []
    scan = jsonlimits.too_deep

    def counted(raw: bytes, limit: int = jsonlimits.MAX_DEPTH) -> bool:
        scans.append(len(raw))
        return scan(raw, limit)

    monkeypatch.setattr(jsonlimits, "too_deep", counted)
    reply = app.test_client().post("/echo", json={"a": [[[[1]]]] * 10})
    assert reply.status_code == 200 and len(scans) == 1


@pytest.mark.parametrize(("path", "found"), [
    ("/files", ("/files", {})), ("/files/", ("/files/<rest:path>", {"path": ""})),
    ("/stage/files/a//b/", ("/files/<rest:path>", {"path": "a//b/"})),
])
def test_routes_keep_the_rest_of_a_path_as_sent(path: str, found: tuple[str, dict[str, str]]) -> None:
    routes = web.Routes("/files", "/files/<rest:path>", hint="no")
    with flask.Flask("r").test_request_context(path):
        assert routes.match(flask.request) == found


def test_an_unmatched_path_is_the_routes_404() -> None:
    routes = web.Routes("/models", "/models/<name>", "/models/<name>/confusion.png", hint="use /models")
    with flask.Flask("r").test_request_context("/models/a/b"), pytest.raises(errors.NotFound, match="use /models"):
        routes.match(flask.request)
