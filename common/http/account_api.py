"""The API description of the account's own routes: named keys, the password, deleting the account.

Kept beside `openapi.py` (which adds these paths and schemas) so the request bodies come from their msgspec
Structs (`common/accounts/bodies.py`) and the replies are described once, here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from common.accounts.bodies import AccountDeletion, NewKey, PasswordChange
from common.http.schemas import STR, Schema, obj, ref

_, BODIES = msgspec.json.schema_components((NewKey, PasswordChange, AccountDeletion),
                                          ref_template="#/components/schemas/{name}")
NUMBER: Schema = {"type": "number"}
SCOPE: Schema = {"type": "string", "enum": ["all", "classify"],
                 "description": "`classify`: classify, read the balance and its jobs only (403 `insufficient_scope`)."}
KEY_FIELDS: dict[str, Schema] = {"id": STR, "name": STR, "prefix": {**STR, "description": "The key's first characters"},
                                 "scope": SCOPE, "created": NUMBER}
SCHEMAS: dict[str, Schema] = {
    **BODIES,
    "NewKeyReply": obj([*KEY_FIELDS, "key"], {**KEY_FIELDS, "key": {**STR, "description": "Shown once."}}),
    "KeyInfo": obj([*KEY_FIELDS, "last_used"], {
        **KEY_FIELDS, "last_used": {"type": ["number", "null"], "description": "Noted at most every ten minutes."}}),
    "KeyList": obj(["keys"], {"keys": {"type": "array", "items": ref("KeyInfo")}}),
    "Deleting": obj(["username", "status"], {"username": STR, "status": {"const": "deleting"}}),
}
KEY_ID = {"name": "id", "in": "path", "required": True, "description": "The key's id, from GET /keys.",
          "schema": {"type": "string", "minLength": 1, "maxLength": 200}}


def paths(op: Any, reply: Any) -> dict[str, Any]:
    """The routes, built with `openapi.op` and `openapi.reply` (handed in: this module is imported by it)."""
    json = "application/json"
    return {
        "/keys": {
            "get": op("list_keys", "keys", "Your API keys (never their secrets)", {
                200: reply("Keys", ref("KeyList"))}, (401, 403)),
            "post": op("create_key", "keys", "Make a named API key with a scope", {
                201: reply("The key, shown once.", ref("NewKeyReply"))}, (400, 401, 403, 409), {json: ref("NewKey")}),
        },
        "/keys/{id}": {"delete": op("revoke_key", "keys", "Revoke one key at once (the others keep working)", {
            204: reply("Revoked")}, (401, 403, 404), params=[KEY_ID])},
        "/password": {"post": op("change_password", "accounts", "Change your password (the current one required)", {
            204: reply("Changed")}, (400, 401, 403, 429), {json: ref("PasswordChange")})},
        "/account": {"delete": op("delete_account", "accounts", "Delete your account, its data and its tokens", {
            202: reply("Its keys stopped; its data is being purged.", ref("Deleting"))}, (400, 401, 403, 429),
            {json: ref("AccountDeletion")})},
    }
