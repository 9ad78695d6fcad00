"""Azure Resource Manager over HTTPS for the AKS collector: subscriptions and managedClusters.

Real ARM wire format, as the Azure SDK expects it:
- GET /subscriptions?api-version=...  -> {"value": [subscription, ...]}
- GET /subscriptions/{id}/providers/Microsoft.ContainerService/managedClusters?api-version=...
  -> {"value": [managedCluster, ...]}
  A page holds PAGE_SIZE items; `nextLink` is an absolute URL back to this server carrying
  `$skipToken` (the SDK swaps in its own api-version and keeps the rest of the query).
- Every request needs `Authorization: Bearer <token>`. Errors are ARM error bodies
  {"error": {"code": ..., "message": ...}}: 401 AuthenticationFailed, 403 AuthorizationFailed,
  429 TooManyRequests with Retry-After, as the test registers them.

TLS uses the session's throwaway certificate authority (servers.tls.TestCa): clients trust its
PEM alone.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from .tls import TestCa

Json = dict[str, Any]
Answer = tuple[int, Json, dict[str, str]]
PAGE_SIZE = 2
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUBSCRIPTIONS = re.compile(r"/subscriptions")
CLUSTERS = re.compile(
    r"/subscriptions/([^/]+)/providers/Microsoft\.ContainerService/managedClusters",
    re.IGNORECASE,
)


@dataclass
class _Fault:
    path: re.Pattern[str]
    status: int
    code: str
    message: str
    remaining: int | None  # None: every matching request, forever
    headers: dict[str, str]


class _HttpsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, arm: ArmServer, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.arm = arm


class ArmServer:
    """The ARM fake; `url` is its base URL. A context manager: leaving it stops the server."""

    def __init__(self, ca: TestCa, token: str) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._subscriptions: list[Json] = []
        self._clusters: dict[str, list[Json]] = {}
        self._faults: list[_Fault] = []
        self._seen: Counter[tuple[str, str]] = Counter()
        self._httpd = _HttpsServer(self, ca.server_context())
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval lets stop() return at once instead of after half a second.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def add_subscription(self, subscription: str, state: str = "Enabled") -> None:
        resource = {
            "id": f"/subscriptions/{subscription}",
            "authorizationSource": "RoleBased",
            "subscriptionId": subscription,
            "tenantId": TENANT,
            "displayName": f"subscription {subscription[:8]}",
            "state": state,
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }
        with self._lock:
            self._subscriptions.append(resource)
            self._clusters.setdefault(subscription, [])

    def add_cluster(self, subscription: str, resource: Json) -> None:
        """A managedCluster resource as ARM returns it (nested `properties`, REST names)."""
        with self._lock:
            self._clusters.setdefault(subscription, []).append(copy.deepcopy(resource))

    def add_fault(
        self,
        path: str,
        status: int,
        code: str,
        message: str,
        *,
        times: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer requests whose path fully matches the regex `path` with an ARM error."""
        fault = _Fault(re.compile(path, re.IGNORECASE), status, code, message, times, headers or {})
        with self._lock:
            self._faults.append(fault)

    def requests_seen(self, method: str = "*", path: str = ".*") -> int:
        pattern = re.compile(path, re.IGNORECASE)
        with self._lock:
            return sum(
                count
                for (seen_method, seen_path), count in self._seen.items()
                if method in ("*", seen_method) and pattern.fullmatch(seen_path)
            )

    def methods_seen(self) -> set[str]:
        with self._lock:
            return {method for method, _ in self._seen}

    # Called from the server's threads.

    def answer(self, method: str, path: str, query: dict[str, str], authorization: str) -> Answer:
        with self._lock:
            self._seen[(method, path)] += 1
        if authorization != f"Bearer {self.token}":
            return _error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing or invalid.",
            )
        if method != "GET":
            return _error(
                405, "MethodNotAllowed", f"The requested resource does not support '{method}'."
            )
        if "api-version" not in query:
            return _error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        fault = self._take_fault(path)
        if fault is not None:
            return fault.status, _error(fault.status, fault.code, fault.message)[1], fault.headers
        with self._lock:
            if SUBSCRIPTIONS.fullmatch(path):
                return 200, self._page(list(self._subscriptions), path, query), {}
            match = CLUSTERS.fullmatch(path)
            clusters = self._clusters.get(match.group(1)) if match else None
        if match is None:
            return _error(404, "NotFound", f"No resource at {path}.")
        if clusters is None:
            return _error(
                404, "SubscriptionNotFound", f"The subscription '{match.group(1)}' was not found."
            )
        return 200, self._page(list(clusters), path, query), {}

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining != 0 and fault.path.fullmatch(path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _page(self, items: list[Json], path: str, query: dict[str, str]) -> Json:
        start = int(query.get("$skipToken") or 0)
        end = start + PAGE_SIZE
        page: Json = {"value": items[start:end]}
        if end < len(items):
            token = urlencode({"api-version": query["api-version"], "$skipToken": str(end)})
            page["nextLink"] = f"{self.url}{path}?{token}"
        return page


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "message": message}}, {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests ask requests_seen() instead

    def do_GET(self) -> None:
        target = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body, headers = self.server.arm.answer(
            self.command, target.path, query, self.headers.get("Authorization", "")
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", "8f2c1d44-2a17-49b8-9c0e-1d3f5a6b7c80")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET
