"""A direct parse of a multipart form body, for the forms clients send; werkzeug's parser for anything else.

werkzeug's streaming parser compiles two regular expressions for each request's
boundary (new for every request, so the `re` cache never holds them) and walks
the body in 64 KiB chunks through a state machine: about half a millisecond of
CPU for one photo, on a request whose other work (auth, both store
transactions, the log line) costs less. Here the body is already in memory
(the guard read it to count its parts, `common.http.guard._check_form`), so a
form laid out the way browsers, curl and `requests` lay it out (the first
delimiter at the very start or after one CRLF, CRLF line breaks, ASCII part headers, each part
ended by CRLF and the delimiter) is cut with `bytes.find`. Anything else
(a preamble, bare LF, folded or non-ASCII headers, a delimiter followed by
something else, a delimiter inside a part, a part without a name) is handed to werkzeug's parser
unchanged, so every unusual body gets exactly the answer it got before. The
limits are werkzeug's: a text field over `max_form_memory_size` or more than
`max_form_parts` parts is its 413 (`RequestEntityTooLarge`), which
`common.http.web.error_response` renders.
"""

from __future__ import annotations

import io
from typing import IO, Any

import flask
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

CHARSETS = {"ascii", "us-ascii", "utf-8", "iso-8859-1"}  # werkzeug's safe list for a text field's charset
MAX_HEADERS = 16 * 1024  # a part's header block longer than this is werkzeug's to refuse
Parts = tuple[list[tuple[str, str]], list[tuple[str, FileStorage]]]


def _headers(block: bytes) -> Headers | None:
    """A part's headers, when every line is a plain ASCII `Name: value` (else None: werkzeug's to read)."""
    if len(block) > MAX_HEADERS or not block.isascii():
        return None
    headers = []
    for line in block.decode("ascii").split("\r\n"):
        if line[:1] in (" ", "\t") or ":" not in line or "\r" in line or "\n" in line:  # folded, bare CR/LF
            return None
        name, _, value = line.partition(":")
        headers.append((name.strip(" \t"), value.strip(" \t")))
    return Headers(headers)


def _charset(headers: Headers) -> str:
    _, options = parse_options_header(headers.get("content-type"))
    charset = options.get("charset", "").lower()
    return charset if charset in CHARSETS else "utf-8"


def parse(body: bytes, boundary: bytes, max_field: int | None, max_parts: int | None) -> Parts | None:
    """The form's text fields and files, or None when the body is not laid out the plain way (see above)."""
    delimiter = b"--" + boundary
    separator = b"\r\n" + delimiter
    lead = 2 if body.startswith(separator) else 0  # werkzeug's own test client puts a line break first
    if not body.startswith(delimiter + b"\r\n", lead):
        return None
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    position = lead + len(delimiter) + 2
    while True:
        head_end = body.find(b"\r\n\r\n", position)
        hit = body.find(delimiter, head_end + 4) if head_end >= 0 else -1
        end = hit - 2  # the part's first delimiter, which must follow a CRLF: after a bare CR or LF, or first
        plain = hit >= 0 and end >= head_end + 4 and body[end:hit] == b"\r\n"  # in the part, werkzeug ends it there
        headers = _headers(body[position:head_end]) if plain else None
        if headers is None or "content-disposition" not in headers:
            return None
        _, options = parse_options_header(headers["content-disposition"])
        name, filename = options.get("name"), options.get("filename")
        if name is None:
            return None
        if max_parts is not None and len(fields) + len(files) >= max_parts:
            raise RequestEntityTooLarge()
        data = body[head_end + 4:end]
        if filename is None:
            if max_field is not None and len(data) > max_field:
                raise RequestEntityTooLarge()
            fields.append((name, data.decode(_charset(headers), "replace")))
        else:
            files.append((name, FileStorage(io.BytesIO(data), filename, name, headers=headers)))
        position = end + len(separator)
        follows = body[position:position + 2]
        if follows == b"--":  # the closing delimiter; what follows it is the epilogue, ignored
            return fields, files
        if follows != b"\r\n":
            return None
        position += 2


class FormParser(FormDataParser):
    """Flask's form parser with the direct parse first for multipart bodies."""

    def _parse_multipart(self, stream: IO[bytes], mimetype: str, content_length: int | None,
                         options: dict[str, str]) -> Any:
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        body = stream.read()  # within the body limit: the guard refused a larger Content-Length unread
        parsed = parse(body, boundary, self.max_form_memory_size, self.max_form_parts)
        if parsed is None:
            return super()._parse_multipart(io.BytesIO(body), mimetype, len(body), options)
        return stream, self.cls(parsed[0]), self.cls(parsed[1])


class Request(flask.Request):
    """The request class of every function's app (`common.http.guard.install`)."""

    form_data_parser_class = FormParser
