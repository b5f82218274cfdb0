"""Who is asking: the account behind an HTTP request.

Any of `Authorization: Bearer <api key>` (a hash and one look-up, no bcrypt),
HTTP Basic, or `username`/`password` in a JSON body (the seeds' form). Werkzeug
parses the header; a header it cannot parse is a 401, never a 500.
"""

from __future__ import annotations

import contextlib
from typing import Any

import flask

from common import bootstrap
from common.accounts import admins, keys, passwords
from common.accounts import service as accounts
from common.accounts.bodies import USERNAME_RULE
from common.adapters.deps import Deps
from common.core import errors, logs
from common.http import scopes, web
from common.http.clientaddr import client_network as client_network  # re-exported: the functions call it here
from common.records.records import Account


def _by_password(username: Any, password: Any, network: str, deps: Deps) -> Account:
    """The account whose password this is. A name no account can have is refused at once (no timing to hide);
    the others take as long whether the account exists or not, and only an existing one costs a bcrypt slot.
    Failures lock this name for this network only (common/records/throttles.py)."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise errors.Unauthorized("username and password must be strings.")
    wrong = errors.Unauthorized("Wrong username or password.", code="invalid_credentials")
    if not USERNAME_RULE.search(username):
        raise wrong
    store = deps.store
    store.check_login(username, network)  # 429 while locked after repeated failures, before any bcrypt work
    account = store.get_account(username)
    if account is None or not passwords.check_password(password, account.password_hash):
        if account is None:
            passwords.pretend_check()  # as long as a wrong password takes, without a hash or a hash slot
        store.login_failed(username, network, deps.settings.accounts.login_free_failures)
        raise wrong
    store.login_succeeded(username, network)
    return account


def _by_key(key: str, deps: Deps, request: flask.Request) -> Account:
    """The key's account, if the key is live and its scope allows this request (`scopes.py`, the one check)."""
    key, hashed = key.strip(), accounts.key_hash(key.strip())
    found = deps.store.key_and_account(hashed) if key.startswith(accounts.KEY_PREFIX) else None
    if found is None:
        raise errors.Unauthorized(
            "The API key is not valid. Use the key shown at registration, or get a new one with POST /api-key.",
            code="invalid_api_key",
        )
    record, account = found
    scopes.check(str(record.get("scope", scopes.ALL)), request)
    keys.seen(hashed, record, deps)  # `last_used`, coarsely
    request.environ[scopes.KEY_HASH] = hashed
    return account


def key_hash_of(request: flask.Request) -> str | None:
    """The hash of the API key that authenticated `request` (None: a password did)."""
    return request.environ.get(scopes.KEY_HASH)


def _body_credentials(request: flask.Request) -> dict[str, Any] | None:
    """`username`/`password` from a JSON object body or multipart form fields (the seeds' forms), if any."""
    if request.mimetype == "multipart/form-data":
        body: dict[str, Any] = dict(request.form)
    elif web.is_json(request) and request.content_length:
        body = web.json_body(request, required=False)
    else:
        return None
    return body if "password" in body else None


def authenticate(request: flask.Request, *, allow_key: bool = True, deps: Deps | None = None) -> Account:
    """The account behind a request: Bearer key, HTTP Basic, or username/password in the JSON body. Its
    username (never a key or password) goes on the request's log line. `deps`: the process's by default."""
    deps = deps or bootstrap.deps()
    account = _authenticate(request, allow_key, deps)
    logs.annotate(user=account.username)
    _admit(account, deps)
    return account


SUSPENDED = ("This account is suspended: its API keys, sessions and password are refused. Contact the operator "
             "of this service to have it resumed.")


def _admit(account: Account, deps: Deps) -> None:
    """Refuse a suspended account (its document was read to authenticate: no read or write more), and note its
    activity, coarsely (at most one write an hour per account; a busy database skips the note, not the request)."""
    if account.suspended:
        raise errors.Forbidden(SUSPENDED, code="account_suspended")
    with contextlib.suppress(errors.AppError):
        deps.store.note_activity(account.username, account.last_active)


def _authenticate(request: flask.Request, allow_key: bool, deps: Deps) -> Account:
    admins.bootstrap_admin(deps)
    header = request.headers.get("Authorization", "")
    try:
        auth = request.authorization
    except ValueError:  # werkzeug lets b64decode's ValueError out for non-ASCII Basic credentials
        auth = None
    if header and auth is None:
        raise errors.Unauthorized("The Authorization header is malformed. Send Bearer <api key> or Basic "
                                  "base64(username:password).")
    if auth is not None and auth.type == "bearer":
        if not allow_key:
            raise errors.Unauthorized("This needs your password, not an API key: use HTTP Basic or "
                                      "username and password in the JSON body.")
        return _by_key(auth.token or "", deps, request)
    if auth is not None and auth.type == "basic":
        if not auth.password:
            raise errors.Unauthorized("The Basic authorization header must hold username:password.")
        return _by_password(auth.username, auth.password, client_network(request), deps)
    if auth is not None:
        raise errors.Unauthorized("Unsupported Authorization scheme; use Bearer <api key> or Basic.")
    body = _body_credentials(request)
    if body is not None:
        return _by_password(body.get("username"), body.get("password"), client_network(request), deps)
    how = "Authorization: Bearer <api key>, HTTP Basic, or" if allow_key else "HTTP Basic or"
    raise errors.Unauthorized(f"Authentication required: send {how} username and password in the JSON body.")
