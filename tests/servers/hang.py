"""A proxy in front of a cloud fake that never answers some requests: those signed for some AWS
regions, or for some paths (a GCP project's, an Azure subscription's).

botocore takes one endpoint per service (AWS_ENDPOINT_URL_EKS), not one per region, so the region
is read where the fakes read it, from the SigV4 credential scope. A hung request is read, then
either left without a byte of answer ("silent": the read timeout's case) or answered one byte of
header at a time, forever ("trickle": what a read timeout never catches). Every other request is
forwarded unchanged to the upstream and its answer relayed. With `tls`, the proxy speaks HTTPS
with that test CA's certificate and reaches an https:// upstream trusting that CA alone.
"""

import http.client
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from .http import LocalHTTPServer, Serving
from .tls import TestCa

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/")
_NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}
)
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
        upstream = (
            http.client.HTTPSConnection(
                proxy._host, proxy._port, timeout=60, context=proxy.tls.client_context()
            )
            if proxy.tls is not None
            else http.client.HTTPConnection(proxy._host, proxy._port, timeout=60)
        )
        try:
            # skip_host: SigV4 signs the client's Host header, which must reach the upstream.
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _NOT_FORWARDED:
                    upstream.putheader(name, value)
            upstream.endheaders(body or None)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _NOT_FORWARDED and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


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
        parts = urlsplit(upstream_url)
        scheme = "https" if tls is not None else "http"
        if parts.scheme != scheme or parts.hostname is None:
            raise ValueError(f"upstream must be an {scheme}:// URL, got {upstream_url!r}")
        self._host, self._port = parts.hostname, parts.port or (443 if tls else 80)
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

    def requests_seen(self, region: str | None = None) -> int:
        """Requests signed for `region` (None: unsigned ones, e.g. a bearer token's)."""
        with self._lock:
            return self._seen[region]

    def _note(self, region: str | None) -> None:
        with self._lock:
            self._seen[region] += 1
