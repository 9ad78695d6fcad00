"""A proxy in front of moto_server that holds the first DynamoDB save of cluster states, so that
a test can kill the process making it at exactly that point: after its alerts went out and
before any state of theirs was stored.

Every request is forwarded unchanged (method, path, headers but the hop-by-hop ones, body) and
its answer passed back unchanged, except the first BatchWriteItem that puts a cluster's state
(an item whose key does not start with "#": those are the store's own claims, runs and
suppressions). That one is never forwarded and never answered: its handler waits until the proxy
stops, and `held` is set the moment it arrives.
"""

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from mutguard.publish.stores.dynamodb import KEY

from .eks_regions import HOP_BY_HOP, Upstream, send_answer
from .http import LocalHTTPServer, Serving

BATCH_WRITE_TARGET = "DynamoDB_20120810.BatchWriteItem"


def saves_cluster_state(headers: Mapping[str, str], body: bytes) -> bool:
    """Whether a request is a BatchWriteItem putting at least one cluster's state."""
    if headers.get("X-Amz-Target") != BATCH_WRITE_TARGET:
        return False
    requests = json.loads(body).get("RequestItems", {})
    return any(
        not request["PutRequest"]["Item"][KEY]["S"].startswith("#")
        for table_requests in requests.values()
        for request in table_requests
        if "PutRequest" in request
    )


class _HttpServer(LocalHTTPServer):
    def __init__(self, proxy: "HoldingProxy") -> None:
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

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if proxy._holds(self.headers, body):
            proxy._stopping.wait()
            self.close_connection = True  # the request stays unanswered
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        send_answer(self, proxy._upstream.exchange(self.command, self.path, headers, body))


class HoldingProxy(Serving):
    """Forwards every request to `upstream_url` (moto_server) but the first save of cluster
    states, which it holds until it stops; `held` is set once it holds it."""

    def __init__(self, upstream_url: str) -> None:
        self._upstream = Upstream(upstream_url)
        self._lock = threading.Lock()
        self.held = threading.Event()
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("HoldingProxy is not started")
        return f"http://127.0.0.1:{self._httpd.port}"

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("HoldingProxy is already started")
        self._stopping.clear()
        self._serve(_HttpServer(self), "holding-proxy")
        return self

    def stop(self) -> None:
        self._stopping.set()  # the held handler ends, its connection closed unanswered
        self._shut_down()
        self._upstream.close()

    def _holds(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether to hold this request: the first save of cluster states, and only that."""
        if not saves_cluster_state(headers, body):
            return False
        with self._lock:
            if self.held.is_set():
                return False
            self.held.set()
            return True
