"""The web console in a real browser (Debian's chromium driven by Playwright) against the real local stack.

Journeys: sign up, classify by drag and drop, see the bars and the new balance; sort a folder with a live
progress bar; sign in and out without touching the CLI's key; hostile text from the server and the user shown as text, never run; phone width. Every page
is watched for console errors and CSP violations. Screenshots go to tests/artifacts/ (look at them).

The files and custom-model journeys need the lead's /files and /models endpoints: they are marked
`needs_files` / `needs_models` until those land.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra import photos
from tests import localstack_server as stack
from tests.conftest import REPO
from tests.waiting import wait_until

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "tests" / "artifacts"
XSS = "<img src=x onerror=window.__xss=1>"
HOSTILE_LABEL = f"tripod {XSS}"  # the label the stack's model gives camera.png (see `hostile_models`)
EXPECTED_HTTP = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
TIMEOUT = 30_000
PASSWORD = "Password (at least 8 characters)"  # the sign-in form's (the account room has password fields too)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def hostile_models(tmp_path_factory: pytest.TempPathFactory, lite2_dir: Path) -> Path:
    """The real models (both built-ins), except that the label of `tripod` carries markup: the server then really
    answers it."""
    out = tmp_path_factory.mktemp("models")
    changed = False
    for path in lite2_dir.iterdir():
        if path.name.endswith(".labels.json"):
            labels = json.loads(path.read_text())
            for c in labels.get("classes", []):
                if c.get("label") == "tripod":
                    c["label"], changed = HOSTILE_LABEL, True
            (out / path.name).write_text(json.dumps(labels))
        else:
            (out / path.name).symlink_to(path)
    assert changed, f"no model in {lite2_dir} has a tripod class to relabel"
    return out


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, hostile_models: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("console-data")
    server = stack.start(data, hostile_models)
    yield {"url": server.url, "data": data}
    server.stop()


@pytest.fixture
def page(browser: Any, console: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (empty sessionStorage) on the console; fails the test on any console error."""
    viewport = getattr(request, "param", {"width": 1100, "height": 900})
    context = browser.new_context(viewport=viewport, accept_downloads=False)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    problems: list[str] = []
    page.on("console", lambda m: watch(problems, m))
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.goto(console["url"] + "/")
    wait(page, "document.body.dataset.ready === 'true'")  # its controls wired (a click before that is lost)
    yield page
    context.close()
    assert problems == [], problems


def watch(problems: list[str], message: Any) -> None:
    """Collect console errors (CSP violations included), except the browser's note of an expected 4xx reply."""
    if message.type == "error" and not EXPECTED_HTTP.search(message.text):
        problems.append(message.text)


def wait(page: Any, expression: str, timeout: float = TIMEOUT / 1000) -> None:
    """Poll a JS expression until it is true. (Playwright's wait_for_function evaluates strings with eval, which
    the console's Content-Security-Policy rightly refuses; evaluate() runs through the debugger protocol.)"""
    wait_until(lambda: page.evaluate(f"() => Boolean({expression})"), timeout,
               lambda: f"waiting for {expression}: " + page.evaluate("() => document.body.innerText")[-1200:])


def shot(page: Any, name: str, full: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.evaluate("() => window.scrollTo(0, 0)")  # a full-page shot of a scrolled page repeats the sticky bar
    page.wait_for_timeout(100)
    page.screenshot(path=str(path), full_page=full)
    return path


def sign_up(page: Any) -> str:
    username = f"web{uuid.uuid4().hex[:8]}"
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label(PASSWORD).fill("a long password")
    page.get_by_role("button", name="Sign up").click()
    wait(page, "document.getElementById('balance').textContent === '5'")
    return username


def room(page: Any, name: str) -> None:
    """Go to a room of the console by its link in the navigation bar, as a user does."""
    page.get_by_role("navigation", name="Console pages").get_by_role("link", name=name, exact=True).click()
    wait(page, f"document.querySelector('.rooms a[aria-current=page]')?.textContent === {name!r}")


def drop_files(page: Any, selector: str, files: list[tuple[str, bytes, str]]) -> None:
    """A real drop event carrying real File objects, as a user's drag and drop delivers them."""
    payload = [{"name": n, "b64": __import__("base64").b64encode(b).decode(), "type": t} for n, b, t in files]
    transfer = page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, {type: f.type}));
        }
        return dt;
    }""", payload)
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def results(page: Any, count: int) -> list[dict[str, Any]]:
    wait(page, f"document.querySelectorAll('#results .result .bars, #results .result "
                           f".status[data-kind=error]').length >= {count}")
    return page.evaluate("""() => Array.from(document.querySelectorAll('#results .result'), (card) => ({
        name: card.querySelector('.name').textContent,
        preview: !!card.querySelector('img.preview'),
        error: card.querySelector('.status[data-kind=error]')?.textContent || null,
        bars: Array.from(card.querySelectorAll('.bars li'), (li) => ({
            label: li.querySelector('.label').textContent, value: li.querySelector('meter').value})),
    }))""")


def test_sign_up_classify_two_dropped_images_and_see_the_balance(page: Any) -> None:
    controls = page.locator("#files")
    assert controls.is_disabled() and page.locator("#folder-input").is_disabled()  # until signed in
    sign_up(page)
    assert controls.is_enabled()
    assert "built-in" in page.locator("#model option").first.text_content().lower()  # from GET /models
    assert page.locator("#model").input_value() == "efficientnet_lite0"  # the default, chosen for the user
    assert page.locator("#model option[value=efficientnet_lite2]").count() == 1
    drop_files(page, "#drop", [("coffee.png", photos.data("coffee.png"), "image/png"),
                               ("cat.png", photos.data("chelsea.png"), "image/png")])
    cards = {card["name"]: card for card in results(page, 2)}
    assert cards["coffee.png"]["bars"][0]["label"] == "espresso" and cards["coffee.png"]["bars"][0]["value"] > 0.5
    assert len(cards["cat.png"]["bars"]) == 5 and all(c["preview"] for c in cards.values())
    values = [b["value"] for b in cards["cat.png"]["bars"]]
    assert values == sorted(values, reverse=True)
    wait(page, "document.getElementById('balance').textContent === '3'")
    # a file that is not an image: the server's own message, on that image's card, and nothing charged
    page.set_input_files("#files", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello there"}])
    error = next(c for c in results(page, 3) if c["name"] == "notes.txt")["error"]
    assert error and "not an image" in error
    assert not next(c for c in results(page, 3) if c["name"] == "notes.txt")["preview"]
    assert page.locator("#account-form").is_hidden() and page.locator("#sign-out").is_visible()
    assert page.locator("#balance").text_content() == "3"
    # the key is kept in this tab's sessionStorage only: never in the URL or in localStorage
    assert page.evaluate("sessionStorage.getItem('imageclassify.key')").startswith("icf_")
    assert "icf_" not in page.url and page.evaluate("localStorage.length") == 0
    shot(page, "console-classify")


def test_sign_in_and_sort_a_folder_with_a_live_progress_bar(page: Any, console: dict[str, Any]) -> None:
    user = stack.register(console["url"], f"sorter{uuid.uuid4().hex[:6]}")
    source = f"{user['username']}-all/"
    folder = stack.bucket_folder(console["data"], source, user["username"])
    folder.mkdir(parents=True)
    for i, name in enumerate(["coffee.png", "chelsea.png", "coffee.png"]):
        shutil.copy(photos.path(name), folder / f"{i}-{name}")
    page.get_by_label("Username", exact=True).fill(user["username"])
    page.get_by_label(PASSWORD).fill(user["password"])
    page.get_by_role("button", name="Sign in").click()
    wait(page, "document.getElementById('balance').textContent === '5'")
    room(page, "Sort")
    page.get_by_label("Source folder in your space").fill(source)
    page.get_by_label("Classes, separated by commas").fill("food, cat")
    page.get_by_role("button", name="Start sorting").click()
    wait(page, "document.getElementById('job-progress').value === 100")
    wait(page, "document.getElementById('job-status').textContent === 'Job done.'")
    assert re.search(r"done, 3 of 3 images \(100 %\), in \d+\.\d s$", page.locator("#job-label").text_content())
    counts = dict(page.evaluate("""() => Array.from(document.querySelectorAll('#job-counts tbody tr'),
        (tr) => [tr.cells[0].textContent, Number(tr.cells[1].textContent)])"""))
    assert counts == {"food": 2, "cat": 1, "unmatched": 0, "failed": 0}
    wait(page, "document.getElementById('balance').textContent === '2'")
    shot(page, "console-sort-job")


def test_console_sign_in_keeps_the_cli_key_and_sign_out_revokes_its_own(page: Any, console: dict[str, Any]) -> None:
    """Signing in to the console opens a session key of its own (POST /sessions): the API key the CLI and scripts
    hold keeps working; signing out revokes the session key only."""
    user = stack.register(console["url"], f"cli{uuid.uuid4().hex[:8]}")
    tokens = console["url"] + "/tokens"

    def status(key: str) -> int:
        return requests.get(tokens, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code

    page.get_by_label("Username", exact=True).fill(user["username"])
    page.get_by_label(PASSWORD).fill(user["password"])
    page.get_by_role("button", name="Sign in").click()
    wait(page, "document.getElementById('balance').textContent === '5'")
    session_key = page.evaluate("sessionStorage.getItem('imageclassify.key')")
    assert session_key.startswith("icf_") and session_key != user["api_key"]
    assert status(user["api_key"]) == 200 and status(session_key) == 200
    assert page.locator("#key-box").is_hidden()  # the account's key is not the console's to show
    page.get_by_role("button", name="Sign out").click()
    wait(page, "document.getElementById('account-status').textContent === 'Signed out.'")
    # the revocation is sent as the page signs out
    wait_until(lambda: status(session_key) == 401, 30, "the session key still works after signing out")
    assert status(user["api_key"]) == 200
    assert page.evaluate("sessionStorage.length") == 0


def test_hostile_text_is_shown_never_run(page: Any) -> None:
    sign_up(page)
    # a label from the server and a file name from the user, both carrying markup
    drop_files(page, "#drop", [(f"{XSS}.png", photos.data("camera.png"), "image/png")])
    card = results(page, 1)[0]
    assert card["name"] == f"{XSS}.png" and card["bars"][0]["label"] == HOSTILE_LABEL
    # a class name the server echoes in its refusal
    room(page, "Sort")
    page.get_by_label("Classes, separated by commas").fill(XSS)
    page.get_by_role("button", name="Start sorting").click()
    wait(page, "document.getElementById('job-status').dataset.kind === 'error'")
    assert XSS in page.locator("#job-status").text_content()
    page.wait_for_timeout(300)  # give any injected handler the time to run
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("img[src='x']").count() == 0
    shot(page, "console-hostile-text")


@pytest.mark.parametrize("page", [{"width": 375, "height": 812}], indirect=True)
def test_phone_width(page: Any) -> None:
    sign_up(page)
    page.set_input_files("#files", files=[{"name": "coffee.png", "mimeType": "image/png",
                                           "buffer": photos.data("coffee.png")}])
    results(page, 1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.locator("#balance").is_visible()
    page.mouse.wheel(0, 2000)
    assert page.locator("#balance").is_visible()  # the sticky bar keeps the balance in view
    page.mouse.wheel(0, -4000)
    page.wait_for_timeout(200)
    shot(page, "console-phone")


def test_keyboard_only_sign_up(page: Any) -> None:
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # the first stop skips to the console
    page.locator("#username").focus()
    page.keyboard.type(f"kb{uuid.uuid4().hex[:8]}")
    page.keyboard.press("Tab")
    page.keyboard.type("a long password")
    page.keyboard.press("Tab")  # Sign in
    page.keyboard.press("Tab")  # Sign up
    assert page.evaluate("document.activeElement.id") == "sign-up"
    page.keyboard.press("Enter")
    wait(page, "document.getElementById('balance').textContent === '5'")


def test_wrong_password_shows_the_servers_message(page: Any, console: dict[str, Any]) -> None:
    user = stack.register(console["url"], f"pw{uuid.uuid4().hex[:8]}")
    page.get_by_label("Username", exact=True).fill(user["username"])
    page.get_by_label(PASSWORD).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    wait(page, "document.getElementById('account-status').dataset.kind === 'error'")
    assert "Wrong username or password" in page.locator("#account-status").text_content()
    assert page.locator("#files").is_disabled()


def test_docs_page_renders_the_description(browser: Any, console: dict[str, Any]) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: watch(errors, m))
    page.goto(console["url"] + "/docs")
    wait(page, "document.getElementById('docs-status').textContent.endsWith('operations.')")
    assert page.locator("#op-classify h2").text_content() == "post/classify"
    assert page.locator("#schema-Error").count() == 1
    page.close()
    assert errors == []


# -- journeys that need the lead's /files and /models endpoints ----------------------------------------


def training_folder(root: Path) -> Path:
    """Two classes of five distinct images each (crops of real photos), as a user's folder on disk."""
    from PIL import Image

    folder = root / "pets"
    for label, name in (("coffee", "coffee.png"), ("cat", "chelsea.png")):
        (folder / label).mkdir(parents=True)
        image = Image.open(io.BytesIO(photos.data(name))).convert("RGB")
        for i in range(6):
            box = (i * 8, i * 6, image.width - i * 10, image.height - i * 7)
            image.crop(box).save(folder / label / f"{i}.png")
    return folder


def test_upload_a_folder_and_browse_it(page: Any, tmp_path: Path) -> None:
    sign_up(page)
    room(page, "Files")
    folder = training_folder(tmp_path)
    page.set_input_files("#folder-input", str(folder))
    wait(page, "document.getElementById('files-status').textContent === 'Upload complete.'")
    page.get_by_label("Browse folder").fill("pets/")
    page.get_by_role("button", name="List files").click()
    wait(page, "document.querySelectorAll('#file-list tbody tr').length === 12")
    paths = page.evaluate("Array.from(document.querySelectorAll('#file-list tbody tr td:first-child'), "
                          "(td) => td.textContent)")
    assert "pets/cat/0.png" in paths and "pets/coffee/5.png" in paths
    shot(page, "console-files")


def test_train_a_model_and_see_its_metrics(page: Any, tmp_path: Path, console: dict[str, Any]) -> None:
    username = sign_up(page)
    stack_admin = stack.admin_key(console["url"])
    requests.post(console["url"] + "/refill", json={"username": username, "amount": 50},
                  headers={"Authorization": f"Bearer {stack_admin}"}, timeout=30).raise_for_status()
    room(page, "Files")
    page.set_input_files("#folder-input", str(training_folder(tmp_path)))
    wait(page, "document.getElementById('files-status').textContent === 'Upload complete.'")
    room(page, "Models")
    page.get_by_label("Model name (a-z, 0-9, _ and -)").fill("pets")
    page.get_by_label("Training folder (one subfolder per class)").fill("pets/")
    assert page.locator("#model-backbone").input_value() == "efficientnet_lite0"
    page.select_option("#model-backbone", "efficientnet_lite2")
    page.get_by_role("button", name="Train").click()
    wait(page, "document.getElementById('train-progress').value === 100", timeout=120)
    wait(page, "document.getElementById('confusion').naturalWidth > 0")
    rows = page.evaluate("Array.from(document.querySelectorAll('#metrics-table tbody th'), (th) => th.textContent)")
    assert sorted(rows) == ["cat", "coffee"]
    assert page.locator("#confusion").get_attribute("src").startswith("blob:")
    wait(page, "document.querySelector('#model option[value=pets]') !== null")  # the list reloads after the metrics
    shot(page, "console-model")
