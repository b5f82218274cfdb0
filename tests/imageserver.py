"""A real HTTP server on a loopback port that serves the test photos, redirects, errors and hostile bodies."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from infra import photos


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes = b"", content_type: str = "application/octet-stream",
             headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        if parts[0] == "photo":
            name = parts[1]
            self.send(200, photos.data(name), "image/jpeg" if name.endswith(".jpg") else "image/png")
        elif parts[0] == "redirect":
            self.send(302, headers={"Location": query["to"][0]})
        elif parts[0] == "chain":
            n = int(parts[1])
            target = f"/chain/{n - 1}" if n > 0 else "/photo/coffee.png"
            self.send(302, headers={"Location": target})
        elif parts[0] == "status":
            self.send(int(parts[1]), b"nope", "text/plain")
        elif parts[0] == "slow":
            time.sleep(6)
            self.send(200, photos.data("coffee.png"), "image/png")
        elif parts[0] == "trickle":  # declares 100 kB, sends 10 bytes a second
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.trickle(b"\x89PNG" + b"\x00" * 99996, 10)
        elif parts[0] == "trickle-headers":  # never finishes its headers: one header byte a second
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.trickle(b"X-Slow: " + b"a" * 60000, 1)
        elif parts[0] == "huge":
            self.send(200, b"\x00" * (12 * 1024 * 1024), "image/png")
        elif parts[0] == "huge-undeclared":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(200):
                self.wfile.write(b"\x00" * 65536)
        elif parts[0] == "gzip-bomb":
            self.send(200, gzip.compress(b"\x00" * (50 * 1024 * 1024)), "image/png", {"Content-Encoding": "gzip"})
        elif parts[0] == "text":
            self.send(200, b"<html>not an image</html>", "image/png")
        else:
            self.send(404, b"not found", "text/plain")


    def trickle(self, data: bytes, per_second: int) -> None:
        for i in range(0, len(data), per_second):
            self.wfile.write(data[i:i + per_second])
            self.wfile.flush()
            time.sleep(1)


class Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on purpose (size caps, deadlines) are expected here


def serve() -> tuple[ThreadingHTTPServer, str]:
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
