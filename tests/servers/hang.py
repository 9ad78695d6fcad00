"""A proxy in front of a cloud fake that never answers some requests: those signed for some AWS
regions, or for some paths (a GCP project's, an Azure subscription's).

botocore takes one endpoint per service (AWS_ENDPOINT_URL_EKS), not one per region, so the region
is read where the fakes read it, from the SigV4 credential scope. A hung request is read, then
either left without a byte of answer ("silent": the read timeout's case) or answered one byte of
header at a time, forever ("trickle": what a read timeout never catches). Every other request is
forwarded unchanged to the upstream and its answer relayed. With `tls`, the proxy speaks HTTPS
with that test CA's certificate and reaches an https:// upstream trusting that CA alone.
"""

import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from .http import LocalHTTPServer, Serving
from .relay import Upstream, send_answer
from .tls import TestCa

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/")
MODES = ("silent", "trickle")
TRICKLE_INTERVAL_SECONDS = 0.2


class _HttpServer(LocalHTTPServer):
    def __init__(self, proxy: "HangingProxy") -> None:
        super().__init__(_Handler)
        if proxy.tls is not None:
            self.socket = proxy.tls.server_context().wrap_socket(self.socket, server_side=True)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        proxy: HangingProxy = self.server.proxy
        match = _CREDENTIAL_SCOPE.search(self.headers.get("Authorization", ""))
        region = match.group(1) if match else None
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        proxy._note(region)
        hung_region = proxy.regions is None or region in proxy.regions
        if hung_region and proxy.path.fullmatch(urlsplit(self.path).path):
            self._hang(proxy)
        else:
            self._forward(proxy, body)

    def _hang(self, proxy: "HangingProxy") -> None:
        self.close_connection = True
        if proxy.mode == "silent":
            proxy._stopped.wait()
            return
        head = b"HTTP/1.1 200 OK\r\nX-Trickle: "
        sent = 0
        while not proxy._stopped.wait(TRICKLE_INTERVAL_SECONDS):
            try:
                self.wfile.write(head[sent : sent + 1] if sent < len(head) else b"a")
                self.wfile.flush()
            except OSError:  # the client gave up
                return
            sent += 1

    def _forward(self, proxy: "HangingProxy", body: bytes) -> None:
        answer = proxy._upstream.exchange(self.command, self.path, self.headers.items(), body)
        send_answer(self, answer)


class HangingProxy(Serving):
    """Forwards to `upstream_url`, except the requests whose path matches `path` and, unless
    `regions` is None, that are signed for one of `regions`: those never get an answer (mode
    "silent") or get one header byte every 0.2 s, never the end ("trickle")."""

    def __init__(
        self,
        upstream_url: str,
        *,
        regions: tuple[str, ...] | None = None,
        path: str = ".*",
        mode: str = "silent",
        tls: TestCa | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._upstream = Upstream(upstream_url, tls.client_context() if tls else None)
        self.tls = tls
        self.regions = regions
        self.mode = mode
        self.path = re.compile(path)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._seen: Counter[str | None] = Counter()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("HangingProxy is not started")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._httpd.port}"

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("HangingProxy is already started")
        self._stopped.clear()
        self._serve(_HttpServer(self), "hanging-proxy")
        return self

    def stop(self) -> None:
        self._stopped.set()  # ends the handlers holding hung requests
        self._shut_down()
        self._upstream.close()

    def requests_seen(self, region: str | None = None) -> int:
        """Requests signed for `region` (None: unsigned ones, e.g. a bearer token's)."""
        with self._lock:
            return self._seen[region]

    def _note(self, region: str | None) -> None:
        with self._lock:
            self._seen[region] += 1
