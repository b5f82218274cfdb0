"""The admin routes (`/admin/...`, served by the `tokens` function), behind the console's admin page.

The caller is authenticated first and must be an admin: to anyone else every `/admin/...` path is a 404, the
answer of a path nobody serves, so the routes reveal nothing (a missing or wrong credential is the usual 401).
The stuck and failed work and its re-drive are the operator's own (`common/ops/operations.py`, which the entry
point hands in: this layer does not import the ops layer).
"""

from __future__ import annotations

from typing import Any, Protocol

import flask

from common.accounts import operator
from common.adapters.deps import Deps
from common.core import errors
from common.http import auth, web

ROUTES = web.Routes("/admin/accounts", "/admin/accounts/<name>/<action>", "/admin/jobs",
                    "/admin/jobs/<rest:work>/redrive", "/admin/totals", "/admin/audit",
                    hint="There is no such admin route: see /docs for the admin routes.")
STATES = ("stuck", "failed")
DEFAULT_IDLE = 60.0  # seconds without progress before unfinished work is listed as stuck
MAX_IDLE = 30 * 86400.0


class Work(Protocol):
    """`common.ops.operations`, as the admin routes use it."""

    def stuck(self, min_idle: float, deps: Deps) -> list[dict[str, Any]]: ...

    def failed(self, deps: Deps, limit: int = 100) -> list[dict[str, Any]]: ...

    def redrive(self, work_id: str, deps: Deps) -> dict[str, Any]: ...


def serve(request: flask.Request, deps: Deps, work: Work) -> flask.Response:
    admin = auth.authenticate(request, deps=deps)
    operator.require_admin(admin, request.path)
    rule, arguments = ROUTES.match(request)
    post = rule.endswith(("<action>", "redrive"))
    web.require_method(request, "POST" if post else "GET")
    if rule == "/admin/accounts":
        return web.respond(operator.search(request.args.get("q", ""), deps))
    if rule == "/admin/accounts/<name>/<action>":
        if arguments["action"] not in ("suspend", "resume"):
            raise errors.NotFound(ROUTES.hint)
        operator.suspend(admin, arguments["name"], arguments["action"] == "suspend", deps)
        return flask.Response(status=204)
    if rule == "/admin/jobs":
        return web.respond({"jobs": _jobs(request, work, deps)})
    if rule == "/admin/jobs/<rest:work>/redrive":
        done = work.redrive(arguments["work"][:200], deps)
        deps.store.audited(admin.username, "redrive", done["id"], lambda tx: None, published=done["published"])
        return web.respond(done)
    if rule == "/admin/totals":
        return web.respond(operator.totals(deps))
    return web.respond(operator.audit_log(deps))


def _jobs(request: flask.Request, work: Work, deps: Deps) -> list[dict[str, Any]]:
    state = request.args.get("state", "stuck")
    if state not in STATES:
        raise errors.BadRequest("state must be `stuck` (unfinished work that stopped moving) or `failed`.",
                                code="invalid_state")
    if state == "failed":
        return work.failed(deps)
    try:
        idle = float(request.args.get("idle", DEFAULT_IDLE))
    except ValueError:
        idle = -1.0
    if not 0 <= idle <= MAX_IDLE:
        raise errors.BadRequest(f"idle must be a number of seconds from 0 to {MAX_IDLE:.0f}.", code="invalid_idle")
    return work.stuck(idle, deps)
