"""POST /classify under functions-framework: every input form, safe fetching, exact token spending."""

from __future__ import annotations

import base64
import threading
import uuid

import pytest
import requests

from infra import photos
from tests import images as odd
from tests.conftest import Api, bearer

EXPECTED = {"coffee.png": "espresso", "camera.png": "tripod", "chelsea.png": None, "grace_hopper.jpg": None}


def labels(body: dict) -> list[str]:
    return [p["label"] for p in body["predictions"]]


def check_photo(name: str, body: dict) -> None:
    top = labels(body)
    if name == "coffee.png":
        assert top[0] == "espresso"
    elif name == "camera.png":
        assert top[0] == "tripod"
    elif name == "chelsea.png":
        assert {"tabby cat", "tiger cat", "Egyptian Mau"} & set(top[:2])
    else:
        assert "military uniform" in top


def assert_error(r: requests.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["status"] == status and err["message"] and "Traceback" not in r.text
    if code:
        assert err["code"] == code, err


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_input_form_with_real_photos(classify_api: Api, image_server: str, name: str) -> None:
    user = classify_api.register()
    url = classify_api.url("classify", "/classify")
    data = photos.data(name)
    mime = "image/jpeg" if name.endswith(".jpg") else "image/png"
    replies = [
        requests.post(url, json={"url": f"{image_server}/photo/{name}"}, headers=bearer(user)),
        requests.post(url, json={"image": base64.b64encode(data).decode()}, headers=bearer(user)),
        requests.post(url, json={"image": f"data:{mime};base64," + base64.b64encode(data).decode()},
                      auth=(user["username"], user["password"])),
        requests.post(url, files={"file": (name, data, mime)}, headers=bearer(user)),
        requests.post(url, data=data, headers={**bearer(user), "Content-Type": mime}),
    ]
    for i, r in enumerate(replies):
        assert r.status_code == 200, r.text
        body = r.json()
        check_photo(name, body)
        assert body["model"] == "efficientnet_lite0" and len(body["predictions"]) == 5
        assert body["tokens_remaining"] == 4 - i
    refill(classify_api, user, 1)
    form = requests.post(url, files={"image": (name, data, mime)}, data={"top_k": "2"}, headers=bearer(user))
    assert len(form.json()["predictions"]) == 2
    assert classify_api.balance(user["api_key"]) == 0


def refill(api: Api, user: dict, amount: int) -> None:
    key = requests.post(api.url("register", "/api-key"), auth=("root", "root-password")).json()["api_key"]
    r = requests.post(api.url("tokens", "/refill"), json={"username": user["username"], "amount": amount},
                      headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text


def test_seed_style_request(classify_api: Api, image_server: str) -> None:
    user = classify_api.register()
    r = requests.post(classify_api.url("classify", "/classify"),
                      json={"username": user["username"], "password": user["password"],
                            "url": f"{image_server}/photo/coffee.png"})
    assert r.status_code == 200 and labels(r.json())[0] == "espresso"
    assert r.json()["tokens_remaining"] == 4


def test_options(classify_api: Api) -> None:
    user = classify_api.register()
    url = classify_api.url("classify", "/classify")
    img = base64.b64encode(photos.data("coffee.png")).decode()
    r = requests.post(url + "?top_k=3", json={"image": img}, headers=bearer(user))
    assert len(r.json()["predictions"]) == 3
    r = requests.post(url, json={"image": img, "top_k": 20, "min_score": 0.5}, headers=bearer(user))
    assert labels(r.json()) == ["espresso"]
    scores = [p["score"] for p in requests.post(url, json={"image": img, "top_k": 20}, headers=bearer(user)).json()["predictions"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    missing = requests.post(url, json={"image": img, "model": "resnet9000"}, headers=bearer(user))
    assert_error(missing, 404, "unknown_model")
    assert "efficientnet_lite0" in missing.json()["error"]["message"]
    assert classify_api.balance(user["api_key"]) == 2


def test_batch_charges_only_good_items(classify_api: Api, image_server: str) -> None:
    user = classify_api.register()
    refill(classify_api, user, 5)
    r = requests.post(classify_api.url("classify", "/classify"), headers=bearer(user), json={"images": [
        {"url": f"{image_server}/photo/coffee.png"},
        {"image": base64.b64encode(photos.data("camera.png")).decode()},
        {"image": "!!!not base64!!!"},
        {"url": f"{image_server}/status/404"},
        {"image": base64.b64encode(odd.truncated_jpeg()).decode()},
        {"url": "http://169.254.169.254/latest/meta-data/"},
        {"url": "x", "image": "y"},
    ]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert labels(results[0])[0] == "espresso" and labels(results[1])[0] == "tripod"
    assert [res.get("error", {}).get("status") for res in results[2:]] == [400, 502, 422, 400, 400]
    assert results[3]["error"]["upstream_status"] == 404
    assert r.json()["tokens_remaining"] == 8 and classify_api.balance(user["api_key"]) == 8


@pytest.mark.parametrize("body, status", [
    ({"images": []}, 400),
    ({"images": [{"url": "http://example.com/a.png"}] * 17}, 400),
    ({"images": "nope"}, 400),
    ({"images": [{"image": "x"}], "url": "http://example.com/a.png"}, 400),
    ({}, 400),
    ({"url": "http://a/x.png", "image": "abc"}, 400),
    ({"image": "%%%garbage%%%"}, 400),
    ({"image": ""}, 400),
    ({"image": 12345}, 400),
    ({"url": 42}, 400),
    ({"image": base64.b64encode(b"hello, not an image").decode()}, 415),
    ({"image": base64.b64encode(odd.truncated_jpeg()).decode()}, 422),
    ({"image": base64.b64encode(odd.png_bomb()).decode()}, 422),
    ({"image": "aGVsbG8=", "top_k": 0}, 400),
    ({"image": "aGVsbG8=", "top_k": 21}, 400),
    ({"image": "aGVsbG8=", "top_k": "five"}, 400),
    ({"image": "aGVsbG8=", "top_k": 2.5}, 400),
    ({"image": "aGVsbG8=", "min_score": 2}, 400),
    ({"image": "aGVsbG8=", "min_score": "high"}, 400),
    ({"uri": "gs://some-other-bucket/x.png"}, 404),
    ({"uri": "ftp://bucket/x.png"}, 400),
])
def test_hostile_json_input_costs_nothing(classify_api: Api, body: dict, status: int) -> None:
    user = classify_api.register()
    r = requests.post(classify_api.url("classify", "/classify"), json=body, headers=bearer(user))
    assert_error(r, status)
    assert classify_api.balance(user["api_key"]) == 5


@pytest.mark.parametrize("make, headers, status", [
    (lambda: b"", {"Content-Type": "image/png"}, 400),
    (lambda: b"x" * (12 * 1024 * 1024), {"Content-Type": "image/png"}, 413),
    (odd.truncated_jpeg, {"Content-Type": "image/jpeg"}, 422),
    (odd.png_bomb, {"Content-Type": "image/png"}, 422),
    (lambda: b"I am text pretending to be a PNG", {"Content-Type": "image/png"}, 415),
    (lambda: b"<xml/>", {"Content-Type": "application/xml"}, 415),
    (lambda: b"{bad json", {"Content-Type": "application/json"}, 400),
    (lambda: b"[1,2]", {"Content-Type": "application/json"}, 400),
])
def test_hostile_bodies_cost_nothing(classify_api: Api, make, headers: dict, status: int) -> None:
    user = classify_api.register()
    r = requests.post(classify_api.url("classify", "/classify"), data=make(), headers={**bearer(user), **headers})
    assert_error(r, status)
    assert classify_api.balance(user["api_key"]) == 5


def test_hostile_multipart(classify_api: Api) -> None:
    user = classify_api.register()
    url = classify_api.url("classify", "/classify")
    assert_error(requests.post(url, files={"file": ("a.png", b"", "image/png")}, headers=bearer(user)), 400)
    assert_error(requests.post(url, files={"other": ("a.png", b"x", "image/png")}, headers=bearer(user)), 400)
    two = {"file": ("a.png", photos.data("coffee.png")), "image": ("b.png", photos.data("coffee.png"))}
    assert_error(requests.post(url, files=two, headers=bearer(user)), 400)
    assert classify_api.balance(user["api_key"]) == 5


def test_auth_and_balance_errors(classify_api: Api) -> None:
    url = classify_api.url("classify", "/classify")
    img = base64.b64encode(photos.data("coffee.png")).decode()
    assert_error(requests.post(url, json={"image": img}), 401)
    assert_error(requests.post(url, json={"image": img}, headers={"Authorization": "Bearer icf_nope"}), 401)
    assert_error(requests.get(url), 405)
    user = classify_api.register()
    for _ in range(5):
        assert requests.post(url, json={"image": img}, headers=bearer(user)).status_code == 200
    broke = requests.post(url, json={"image": img}, headers=bearer(user))
    assert_error(broke, 402, "insufficient_tokens")
    assert broke.json()["error"]["balance"] == 0 and "refill" in broke.json()["error"]["message"]


def test_fetch_failures_refund(classify_api: Api, image_server: str) -> None:
    user = classify_api.register()
    url = classify_api.url("classify", "/classify")
    cases = [("/status/404", 502), ("/status/500", 502), ("/slow", 504), ("/huge", 413), ("/huge-undeclared", 413),
             ("/gzip-bomb", 413), ("/text", 415), ("/chain/3", 502)]
    for path, status in cases:
        assert_error(requests.post(url, json={"url": image_server + path}, headers=bearer(user)), status)
    ok = requests.post(url, json={"url": image_server + "/chain/2"}, headers=bearer(user))
    assert ok.status_code == 200 and labels(ok.json())[0] == "espresso"
    assert classify_api.balance(user["api_key"]) == 4


SSRF = [
    "http://127.0.0.1/", "http://localhost/", "http://[::1]/", "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
    "http://2130706433/", "http://0x7f.1/", "http://017700000001/", "http://100.64.0.1/", "http://192.168.1.1/",
    "http://172.16.0.1/", "http://[fc00::1]/", "http://[fe80::1]/", "http://224.0.0.1/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://[64:ff9b::7f00:1]/",
    "file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/x.png", "http://user:pw@example.com/",
]


@pytest.mark.parametrize("target", SSRF)
def test_ssrf_matrix_with_loopback_not_allowed(strict_api: Api, target: str) -> None:
    user = strict_api.register()
    r = requests.post(strict_api.url("classify", "/classify"), json={"url": target}, headers=bearer(user))
    assert_error(r, 400, "url_not_allowed")
    assert strict_api.balance(user["api_key"]) == 5


@pytest.mark.parametrize("target", ["http://a b/x.png", "http://a..b/x.png", "http://a%2Fb.example/x.png",
                                    "http://" + "a" * 64 + ".example/x.png", "http://exa%41mple.com/x.png"])
def test_malformed_host_names_are_400(strict_api: Api, target: str) -> None:
    """Not a name DNS could answer: the URL is wrong (400), not the remote server (was a 502 fetch_failed)."""
    user = strict_api.register()
    r = requests.post(strict_api.url("classify", "/classify"), json={"url": target}, headers=bearer(user))
    assert_error(r, 400, "invalid_url")
    assert strict_api.balance(user["api_key"]) == 5


def test_loopback_setting_is_off_by_default(strict_api: Api, image_server: str) -> None:
    user = strict_api.register()
    r = requests.post(strict_api.url("classify", "/classify"), json={"url": f"{image_server}/photo/coffee.png"},
                      headers=bearer(user))
    assert_error(r, 400, "url_not_allowed")


@pytest.mark.parametrize("private", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x.png",
                                     "http://192.168.0.1/", "http://[::ffff:10.0.0.1]/"])
def test_redirect_to_private_address_is_refused(classify_api: Api, image_server: str, private: str) -> None:
    """The first hop is allowed (loopback, for the test server); the redirect is checked again and refused."""
    user = classify_api.register()
    r = requests.post(classify_api.url("classify", "/classify"),
                      json={"url": f"{image_server}/redirect?to={private}"}, headers=bearer(user))
    assert_error(r, 400, "url_not_allowed")
    assert classify_api.balance(user["api_key"]) == 5


def test_concurrent_requests_never_oversell(classify_api: Api) -> None:
    user = classify_api.register()
    img = base64.b64encode(photos.data("coffee.png")).decode()
    statuses: list[int] = []
    url = classify_api.url("classify", "/classify")  # the server started once, before the threads

    def call() -> None:
        for _ in range(100):
            r = requests.post(url, json={"image": img}, headers=bearer(user))
            if r.status_code != 503:
                statuses.append(r.status_code)
                return

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 5 + [402] * 7, statuses
    assert classify_api.balance(user["api_key"]) == 0


def test_idempotency_key_charges_once(classify_api: Api) -> None:
    user = classify_api.register()
    url = classify_api.url("classify", "/classify")
    img = base64.b64encode(photos.data("camera.png")).decode()
    headers = {**bearer(user), "Idempotency-Key": f"req-{uuid.uuid4()}"}
    first = requests.post(url, json={"image": img}, headers=headers)
    again = requests.post(url, json={"image": img}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["tokens_remaining"] == 4
    assert classify_api.balance(user["api_key"]) == 4
    bad = requests.post(url, json={"image": img}, headers={**bearer(user), "Idempotency-Key": "x" * 201})
    assert_error(bad, 400, "invalid_idempotency_key")
    # concurrent retries of one request: one charge
    key = {**bearer(user), "Idempotency-Key": f"req-{uuid.uuid4()}"}
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(requests.post(url, json={"image": img}, headers=key).status_code))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) <= {200, 409, 503} and 200 in codes
    assert classify_api.balance(user["api_key"]) == 3
    # the same key with another request: 422, nothing charged; the same request through another encoding replays
    other = base64.b64encode(photos.data("coffee.png")).decode()
    reused = requests.post(url, json={"image": other}, headers=headers)
    assert_error(reused, 422, "idempotency_key_reused")
    raw = requests.post(url, data=photos.data("camera.png"), headers={**headers, "Content-Type": "image/png"})
    assert raw.status_code == 200 and raw.json() == first.json()
    assert classify_api.balance(user["api_key"]) == 3
