"""A proxy that forwards every request to one upstream unchanged (method, path, headers but the
hop-by-hop ones, body) and passes its answer back unchanged, for tests that watch, stop or
change what a client sends: a subclass holds a request (`holds`: never forwarded, never
answered, until the proxy stops), notes an answer (`noted`), or answers some requests itself
(`answer`, with `forward` for the upstream's answer to a changed request). Signatures (SigV4,
Shared Key) cover the path, not the host, so clients pointed at the proxy are answered as by
the upstream.
"""

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from .http import LocalHTTPServer, Serving
from .relay import Answer, Upstream, send_answer


class _HttpServer(LocalHTTPServer):
    def __init__(self, proxy: "ForwardingProxy") -> None:
        super().__init__(_Handler)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # Nagle would add ~40 ms to each answer
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_MERGE = do_GET

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = proxy.answer(self.command, self.path, self.headers, body)
        if answer is None:
            proxy._stopping.wait()
            self.close_connection = True  # the request stays unanswered
            return
        send_answer(self, answer)


class ForwardingProxy(Serving):
    """Forwards to `upstream_url`; `url` is what to give the client instead (the upstream's
    path, e.g. Azurite's /ACCOUNT, kept)."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = Upstream(f"{parts.scheme}://{parts.netloc}")
        self._base_path = parts.path
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return super().url + self._base_path

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._stopping.clear()
        self._serve(_HttpServer(self), type(self).__name__)
        return self

    def stop(self) -> None:
        self._stopping.set()  # a held request's handler ends, its connection closed unanswered
        self._shut_down()
        self._upstream.close()

    def answer(
        self, command: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        """The answer to pass back to the client; None holds the request unanswered."""
        if self.holds(command, headers, body):
            return None
        answer = self.forward(command, target, headers, body)
        self.noted(command, urlsplit(target).path, answer.status, answer.body)
        return answer

    def forward(self, command: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """The upstream's answer to the request with `body` (the client's, or changed)."""
        return self._upstream.exchange(command, target, headers.items(), body)

    def holds(self, command: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether to hold this request rather than forward it."""
        return False

    def noted(self, command: str, path: str, status: int, body: bytes) -> None:
        """Sees each answer passed back."""
