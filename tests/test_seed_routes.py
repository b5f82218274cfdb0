"""The seeds' routes under functions-framework: POST /upload (seed 001) and POST /predict (seeds 002, 003),
answered in their seed's shape, metered and refused exactly like /classify."""

from __future__ import annotations

from typing import Any

import requests

from common.http import seed_routes
from infra import photos
from tests.conftest import Api
from tests.test_classify import assert_error, bearer, refill

ROUTES = {"upload": "image", "predict": "file"}


def post(api: Api, route: str, user: dict, files: Any, headers: dict | None = None,
         data: dict | None = None) -> requests.Response:
    return requests.post(api.url("classify", f"/{route}"), files=files, data=data,
                         headers={**bearer(user), **(headers or {})})


def test_upload_answers_seed_001s_shape_and_spends_a_token(classify_api: Api) -> None:
    user = classify_api.register()
    r = post(classify_api, "upload", user, {"image": ("football.png", photos.data("coffee.png"), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["prediction_1", "prediction_2", "prediction_3"]
    assert body["prediction_1"]["predicted_label"] == "espresso"
    scores = [body[f"prediction_{i}"]["confidence_level"] for i in (1, 2, 3)]
    assert scores == sorted(scores, reverse=True) and 0.5 < scores[0] <= 1
    assert set(body["prediction_2"]) == {"predicted_label", "confidence_level"}
    assert r.headers["X-Tokens-Remaining"] == "4" and r.headers["X-Model"] == "efficientnet_lite0"
    assert classify_api.balance(user["api_key"]) == 4


def test_predict_answers_seed_002s_shape_and_spends_a_token(classify_api: Api) -> None:
    user = classify_api.register()
    r = post(classify_api, "predict", user, {"file": ("cam.png", photos.data("camera.png"), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == 3
    assert body[0]["label"] == "tripod" and all(set(p) == {"label", "score"} for p in body)
    assert body[0]["score"] >= body[1]["score"] >= body[2]["score"]
    # the built-in model named explicitly keeps seed 002's shape
    named = post(classify_api, "predict", user, {"file": ("cam.png", photos.data("camera.png"), "image/png")},
                 data={"model": "efficientnet_lite0"})
    assert named.status_code == 200 and isinstance(named.json(), list)
    # a browser form with a second file input left empty sends a part with no file name: no second file
    form = [("file", ("cam.png", photos.data("camera.png"), "image/png")), ("extra", ("", b"", "application/octet-stream"))]
    assert post(classify_api, "predict", user, form).status_code == 200
    assert classify_api.balance(user["api_key"]) == 2


def test_seed_credentials_in_the_form_work_too(classify_api: Api) -> None:
    user = classify_api.register()
    r = requests.post(classify_api.url("classify", "/upload"),
                      files={"image": ("c.png", photos.data("coffee.png"), "image/png")},
                      data={"username": user["username"], "password": user["password"]})
    assert r.status_code == 200 and "prediction_1" in r.json()


def test_refusals_use_the_envelope_and_cost_nothing(classify_api: Api) -> None:
    user = classify_api.register()
    png = photos.data("coffee.png")
    for route, field in ROUTES.items():
        url = classify_api.url("classify", f"/{route}")
        assert_error(requests.post(url, files={field: ("c.png", png, "image/png")}), 401)
        assert_error(requests.post(url, files={field: ("c.png", png, "image/png")},
                                   headers={"Authorization": "Bearer icf_wrong"}), 401)
        wrong = "file" if field == "image" else "image"
        r = post(classify_api, route, user, {wrong: ("c.png", png, "image/png")})
        assert_error(r, 400, "missing_field")
        assert f"'{field}'" in r.json()["error"]["message"]
        assert_error(post(classify_api, route, user, {field: ("empty.png", b"", "image/png")}), 400, "empty_image")
        for second in (wrong, field):  # one image, one answer: as /classify
            two = [(field, ("a.png", png, "image/png")), (second, ("b.png", png, "image/png"))]
            assert_error(post(classify_api, route, user, two), 400, "invalid_source")
        text = post(classify_api, route, user, {field: ("notes.txt", b"just some text, not a picture", "text/plain")})
        assert_error(text, 415, "not_an_image")
        assert_error(requests.post(url, json={"url": "http://example.com/x.jpg"}, headers=bearer(user)), 415)
        assert_error(requests.get(url, headers=bearer(user)), 405)
        assert_error(post(classify_api, route, user, {field: ("c.png", png, "image/png")},
                          data={"model": "no-such-model"}), 404, "unknown_model")
        assert_error(post(classify_api, route, user, {field: ("c.png", png, "image/png")},
                          data={"model": "m" * 65}), 400, "invalid_model")
    assert classify_api.balance(user["api_key"]) == 5


def test_out_of_tokens_is_402_and_refill_restores(classify_api: Api) -> None:
    user = classify_api.register()
    png = photos.data("coffee.png")
    for _ in range(5):
        assert post(classify_api, "predict", user, {"file": ("c.png", png, "image/png")}).status_code == 200
    r = post(classify_api, "upload", user, {"image": ("c.png", png, "image/png")})
    assert_error(r, 402, "insufficient_tokens")
    assert r.json()["error"]["balance"] == 0
    refill(classify_api, user, 1)
    assert post(classify_api, "upload", user, {"image": ("c.png", png, "image/png")}).status_code == 200
    assert classify_api.balance(user["api_key"]) == 0


def test_an_idempotent_retry_is_free_and_answers_the_same(classify_api: Api) -> None:
    user = classify_api.register()
    png = photos.data("camera.png")
    first, again = (post(classify_api, "predict", user, {"file": ("c.png", png, "image/png")},
                         headers={"Idempotency-Key": "seed-retry-1"}) for _ in range(2))
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert classify_api.balance(user["api_key"]) == 4


def test_seed_003_shape_for_a_custom_model() -> None:
    """A custom model answers with seed 003's single best class (custom models are served by the lead's work;
    the shape itself is decided here)."""
    body = {"model": "tumours", "predictions": [{"label": "Tumor", "score": 0.92, "class_id": 1},
                                                 {"label": "Healthy", "score": 0.08, "class_id": 0}],
            "tokens_remaining": 3}
    assert seed_routes.shape("predict", body, custom=True) == {"predicted_class": "Tumor", "confidence_score": 0.92}
    assert seed_routes.shape("predict", body, custom=False) == [{"label": "Tumor", "score": 0.92},
                                                                {"label": "Healthy", "score": 0.08}]
    assert seed_routes.shape("upload", body, custom=True)["prediction_2"] == {"predicted_label": "Healthy",
                                                                               "confidence_level": 0.08}
