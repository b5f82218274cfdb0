"""The `web` function under functions-framework: the console's files, its security headers, /config.json,
/openapi.json and /docs; and the page's source kept free of what the Content-Security-Policy would block."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate

from infra import processes as servers
from infra.targets import TARGETS
from tests.conftest import REPO, configure

STATIC = REPO / "functions" / "web" / "assets"
ENDPOINTS = {"classify": "https://classify-abc.a.run.app/", "jobs": "https://sort-job-abc.a.run.app"}


def start(tmp: Path, **env: str) -> servers.Server:
    return servers.function("web", TARGETS["web"].source, {"DATA_DIR": str(tmp), **env})


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start(tmp_path_factory.mktemp("web"))
    yield server.url
    server.stop()


def assert_envelope(r: requests.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["status"] == status and r.json()["error"]["message"]


def test_the_console_page_and_its_headers(web: str) -> None:
    r = requests.get(web + "/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "img-src 'self' blob: data:" in csp and "unsafe" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
    assert '<script src="/assets/console.js" defer></script>' in r.text
    assert re.search(r'<input id="folder-input" type="file" webkitdirectory', r.text)
    assert requests.head(web + "/").status_code == 200


@pytest.mark.parametrize("name,kind", [("console.js", "text/javascript"), ("console.css", "text/css"),
                                       ("docs.js", "text/javascript"), ("dom.js", "text/javascript"),
                                       ("chart.js", "text/javascript"), ("admin.js", "text/javascript"),
                                       ("favicon.svg", "image/svg+xml")])
def test_static_files(web: str, name: str, kind: str) -> None:
    r = requests.get(f"{web}/assets/{name}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind)
    assert r.content == (STATIC / name).read_bytes()


@pytest.mark.parametrize("path", ["/assets/nope.js", "/assets/../main.py", "/assets/%2e%2e/main.py", "/assets/",
                                  "/assets/..%2fmain.py", "/main.py", "/index.html/x", "/docs/x", "/" + "a" * 3000])
def test_unknown_and_hostile_paths_are_404(web: str, path: str) -> None:
    r = requests.get(web + path)
    assert_envelope(r, 404)
    assert "aaaa" * 50 not in r.text  # echoes at most a short prefix


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_get(web: str, method: str) -> None:
    r = requests.request(method, web + "/config.json", data=b"x")
    assert_envelope(r, 405)
    assert "GET" in r.headers["Allow"]


def test_config_defaults_to_this_origin(web: str) -> None:
    endpoints = requests.get(web + "/config.json").json()["endpoints"]
    assert set(endpoints) >= {"register", "api-key", "tokens", "classify", "jobs", "models", "files", "upload"}
    assert set(endpoints.values()) == {""} and "openapi.json" not in endpoints


def test_config_from_api_endpoints(tmp_path: Path) -> None:
    server = start(tmp_path, API_ENDPOINTS=json.dumps(ENDPOINTS))
    try:
        endpoints = requests.get(server.url + "/config.json").json()["endpoints"]
        assert endpoints["classify"] == "https://classify-abc.a.run.app" and endpoints["tokens"] == ""
        csp = requests.get(server.url + "/").headers["Content-Security-Policy"]
        assert "connect-src 'self' https://classify-abc.a.run.app https://sort-job-abc.a.run.app" in csp
    finally:
        server.stop()


@pytest.mark.parametrize("raw", ["[1]", "{\"classify\": 3}", "{\"classify\": \"ftp://x\"}", "not json"])
def test_a_malformed_endpoint_map_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    from common.core.config import settings

    configure(monkeypatch, API_ENDPOINTS=raw)
    with pytest.raises(RuntimeError, match="API_ENDPOINTS must be a JSON object"):
        settings()


def test_openapi_is_valid_3_1(web: str) -> None:
    spec = requests.get(web + "/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_docs_page(web: str) -> None:
    r = requests.get(web + "/docs")
    assert r.status_code == 200 and '<script src="/assets/docs.js" defer></script>' in r.text
    assert "Content-Security-Policy" in r.headers


class Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style elements/attributes, event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self.ids: list[str] = []
        self.labelled: set[str] = set()
        self.controls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.blocked.append("inline <script>")
        if tag == "style":
            self.blocked.append("<style>")
        self.blocked += [f"{tag} {n}=" for n in names if n == "style" or n.startswith("on")]
        self.blocked += [f"{tag} {n}={v}" for n, v in names.items() if v and v.strip().lower().startswith("javascript:")]
        if names.get("id"):
            self.ids.append(str(names["id"]))
        if tag == "label" and names.get("for"):
            self.labelled.add(str(names["for"]))
        if tag in ("input", "select", "textarea") and names.get("type") != "hidden":
            self.controls.append(str(names.get("id")))


@pytest.mark.parametrize("page", ["index.html", "docs.html"])
def test_pages_have_no_inline_code_and_every_control_is_labelled(page: str) -> None:
    parser = Inline()
    parser.feed((STATIC / page).read_text())
    assert parser.blocked == []
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    assert [c for c in parser.controls if c not in parser.labelled] == []


@pytest.mark.parametrize("script", ["dom.js", "console.js", "docs.js", "chart.js", "account.js", "admin.js"])
def test_scripts_never_insert_markup(script: str) -> None:
    source = (STATIC / script).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "console.", "localStorage", ".style.cssText", "setAttribute(\"style\""):
        assert sink not in source, f"{script} uses {sink}"
