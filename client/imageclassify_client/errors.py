"""The client's failures, each with the exit code a script can branch on.

1: the server refused (its own message is shown), 2: the command was used wrongly
or is not configured, 3: the API could not be reached, 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

from typing import Any

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_INTERRUPTED = 130


class ClientError(Exception):
    """A failure that is reported as one line on stderr, never as a traceback."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def json(self) -> dict[str, Any]:
        return {"error": {"code": type(self).__name__, "message": self.message}}


class ApiError(ClientError):
    """The server refused a request: its status, code and message from the error envelope."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.body = status, code, body or {}

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status} {self.code})"

    def json(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message,
                          **{k: v for k, v in self.body.items() if k not in ("status", "code", "message")}}}


class ConnectionFailed(ClientError):
    """The API did not answer at all (refused, unresolvable, timed out)."""

    exit_code = EXIT_CONNECTION


class UsageProblem(ClientError):
    """The command cannot run as given (missing key, bad path, ...)."""

    exit_code = EXIT_USAGE
