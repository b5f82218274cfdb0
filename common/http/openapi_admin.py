"""The admin routes' part of the API description (`common/http/openapi.py` merges it): paths and schemas."""

from __future__ import annotations

from typing import Any

from common.http.schemas import BOOL, INT, STR, Schema, obj, ref

NUMBER: Schema = {"type": "number"}
NOT_AN_ADMIN = "To anyone but an admin every /admin path is a 404 (the routes are not revealed)."
WORK_ROW = obj(["kind", "id", "owner", "status", "done", "total", "percentage", "age_seconds", "idle_seconds"], {
    "kind": {"enum": ["job", "training"]}, "id": STR, "owner": STR, "status": STR, "done": INT, "total": INT,
    "percentage": NUMBER, "age_seconds": NUMBER, "idle_seconds": NUMBER, "queued": {"type": ["integer", "null"]}})
SCHEMAS: dict[str, Schema] = {
    "AdminAccounts": obj(["accounts"], {"accounts": {"type": "array", "items": obj(
        ["username", "tokens", "suspended", "last_active"],
        {"username": STR, "tokens": INT, "suspended": BOOL, "admin": BOOL,
         "last_active": {"type": ["number", "null"], "description": "Unix time; updated at most hourly."}})}}),
    "AdminWork": obj(["jobs"], {"jobs": {"type": "array", "items": WORK_ROW}}),
    "Redriven": obj(["kind", "id", "status", "published"],
                    {"kind": {"enum": ["job", "training"]}, "id": STR, "status": STR, "published": INT}),
    "AdminTotals": obj(["day", "accounts", "images_classified", "tokens_spent"], {
        "day": {"type": "string", "format": "date"}, "accounts": INT, "images_classified": INT,
        "tokens_spent": INT}),
    "AuditLog": obj(["events"], {"events": {"type": "array", "items": obj(
        ["admin", "action", "target", "at"],
        {"admin": STR, "action": {"enum": ["refill", "suspend", "resume", "redrive"]}, "target": STR,
         "at": NUMBER})}}),
}


def _param(name: str, where: str, description: str, schema: Schema) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": description, "schema": schema}


def paths(op: Any, reply: Any) -> dict[str, Any]:
    """`op` and `reply` are openapi.py's builders (passed in: that module imports this one)."""
    def admin_op(op_id: str, summary: str, ok: dict[int, Any], fails: tuple[int, ...] = (401, 404),
                 params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return op(op_id, "admin", f"{summary} (admins only). {NOT_AN_ADMIN}", ok, fails, params=params)

    name = _param("name", "path", "A username.", {"type": "string", "minLength": 1, "maxLength": 200})
    action = admin_op("suspend_account", "Suspend an account: its keys and sessions get 403 account_suspended",
                      {204: reply("Suspended")}, (401, 404, 409), [name])
    return {
        "/admin/accounts": {"get": admin_op("admin_accounts", "Accounts whose username begins with q", {
            200: reply("At most 50 accounts, in username order.", ref("AdminAccounts"))}, (400, 401, 404), [
            _param("q", "query", "The beginning of a username (empty: the first accounts).",
                   {"type": "string", "maxLength": 64, "default": ""})])},
        "/admin/accounts/{name}/suspend": {"post": action},
        "/admin/accounts/{name}/resume": {"post": {**action, "operationId": "resume_account",
                                                   "summary": "Resume a suspended account (admins only)",
                                                   "responses": {**action["responses"], "204": reply("Resumed")}}},
        "/admin/jobs": {"get": admin_op("admin_jobs", "Jobs and training runs that are stuck or failed", {
            200: reply("The work, with its progress and idle time.", ref("AdminWork"))}, (400, 401, 404), [
            _param("state", "query", "stuck: unfinished and idle; failed: ended failed.",
                   {"enum": ["stuck", "failed"], "default": "stuck"}),
            _param("idle", "query", "stuck: seconds without progress (default 60).",
                   {"type": "number", "minimum": 0, "default": 60})])},
        "/admin/jobs/{id}/redrive": {"post": admin_op("admin_redrive", "Re-publish what stuck work still misses", {
            200: reply("What was published again.", ref("Redriven"))}, (401, 404, 409), [
            _param("id", "path", "A job id, or owner/name for a training run.",
                   {"type": "string", "minLength": 1, "maxLength": 200})])},
        "/admin/totals": {"get": admin_op("admin_totals", "Accounts, images classified and tokens spent today", {
            200: reply("Today's totals (UTC day), net of refunds.", ref("AdminTotals"))})},
        "/admin/audit": {"get": admin_op("admin_audit", "The audit log: every admin action, newest first", {
            200: reply("The last 100 events.", ref("AuditLog"))})},
    }
