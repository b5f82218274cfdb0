"""The `web` function: the web console at `/` (its files under `/assets/`), `/config.json`, `/openapi.json`, `/docs`.

No numpy, no model, no database: the page talks to the other functions itself.
"""

from pathlib import Path

import flask
import functions_framework

from common.http import console
from common.http.web import endpoint

ASSETS = Path(__file__).resolve().parent / "assets"


@functions_framework.http
@endpoint
def web(request: flask.Request) -> flask.Response:
    return console.serve(request, ASSETS)
