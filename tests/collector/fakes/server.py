"""A small threaded HTTP server on 127.0.0.1 for the fake APIs, with fault injection.

Each fake API registers routes (method and path pattern) whose handlers return a ``Reply``;
tests inject faults that answer the next matching requests instead (a 429, a 500, a malformed
body, a delay longer than the client's timeout). Every request is recorded, so tests can assert
what the real client library sent.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        self.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return json.dumps(self.body).encode()


def json_reply(body: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, body, {"Content-Type": "application/json; charset=utf-8", **headers})


Handler = Callable[[Request], Reply]


@dataclass
class Fault:
    path: re.Pattern[str]
    reply: Reply
    times: int | None  # None: every matching request from now on


class FakeServer:
    """Serve registered routes on an ephemeral loopback port until ``close()``."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.hooks: list[Callable[[Request], None]] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = server.dispatch(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_HEAD = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fail(self, reply: Reply, path: str = ".*", times: int | None = 1) -> None:
        """Answer the next ``times`` requests to ``path`` (a regex) with ``reply``."""
        with self.lock:
            self.faults.append(Fault(re.compile(f"^{path}$"), reply, times))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def dispatch(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            for fault in self.faults:
                if fault.path.match(request.path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault.reply
        for hook in self.hooks:
            hook(request)
        for method, pattern, handler in self.routes:
            found = pattern.match(request.path)
            if found and method == request.method:
                request.match = found.groupdict()
                return handler(request)
        return json_reply({"error": "not found", "path": request.path}, 404)

    def calls(self, path: str) -> list[Request]:
        pattern = re.compile(f"^{path}$")
        return [request for request in self.requests if pattern.match(request.path)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any lookup of a name other than loopback: tests must never reach a real service."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            raise OSError(f"tests may not reach {name}: point the source at a fake server on 127.0.0.1")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
