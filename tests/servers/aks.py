"""Azure Resource Manager over HTTPS for the AKS collector: subscriptions and managedClusters.

Real ARM wire format, as the Azure SDK expects it:
- GET /subscriptions?api-version=...  -> {"value": [subscription, ...]}
- GET /subscriptions/{id}/providers/Microsoft.ContainerService/managedClusters?api-version=...
  -> {"value": [managedCluster, ...]}
  A page holds PAGE_SIZE items; `nextLink` is an absolute URL back to this server carrying
  `$skipToken` (the SDK swaps in its own api-version and keeps the rest of the query).
- POST {managedCluster id}/listClusterUserCredential?api-version=...&format=exec
  -> CredentialResults {"kubeconfigs": [{"name": "clusterUser", "value": <base64 kubeconfig>}]}
  (azure-rest-api-specs ManagedClustersListClusterCredentialResult.json), for a cluster given
  an API server by `set_cluster_endpoint`: the kubeconfig AKS returns for an Entra ID cluster,
  server and CA plus a kubelogin exec user (Azure/kubelogin docs, exec-plugin.md), no secret.
  Every other POST (listClusterAdminCredential included) is 405 and recorded.
- Every request needs `Authorization: Bearer <token>`. Errors are ARM error bodies
  {"error": {"code": ..., "message": ...}}: 401 AuthenticationFailed, 403 AuthorizationFailed,
  429 TooManyRequests with Retry-After, as the test registers them.

TLS uses the session's throwaway certificate authority (servers.tls.TestCa): clients trust its
PEM alone.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import yaml

from .lifecycle import Startable
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
USER_CREDENTIAL = re.compile(r"(/subscriptions/.+)/listClusterUserCredential", re.IGNORECASE)
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"  # kubelogin --server-id
AKS_CLIENT_APP = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"  # kubelogin --client-id


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


class ArmServer(Startable):
    """The ARM fake; `url` is its base URL. A context manager: leaving it stops the server."""

    def __init__(self, ca: TestCa, token: str) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._subscriptions: list[Json] = []
        self._clusters: dict[str, list[Json]] = {}
        self._endpoints: dict[str, tuple[str, bytes]] = {}  # cluster id (lower) -> url, CA
        self._faults: list[_Fault] = []
        self._seen: Counter[tuple[str, str]] = Counter()
        self._httpd = _HttpsServer(self, ca.server_context())
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval lets stop() return at once instead of after half a second.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
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

    def set_cluster_endpoint(self, cluster_id: str, url: str, ca_pem: bytes) -> None:
        """Let listClusterUserCredential answer for this cluster: its API server and CA."""
        with self._lock:
            self._endpoints[cluster_id.lower()] = (url, ca_pem)

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
        credential = USER_CREDENTIAL.fullmatch(path)
        if method != "GET" and not (method == "POST" and credential):
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
        if credential:
            return self._user_credential(credential.group(1))
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

    def _user_credential(self, cluster_id: str) -> Answer:
        with self._lock:
            endpoint = self._endpoints.get(cluster_id.lower())
            resource = next(
                (
                    cluster
                    for clusters in self._clusters.values()
                    for cluster in clusters
                    if cluster["id"].lower() == cluster_id.lower()
                ),
                None,
            )
        if resource is None or endpoint is None:
            return _error(404, "ResourceNotFound", f"The Resource '{cluster_id}' was not found.")
        kubeconfig = _exec_kubeconfig(resource, *endpoint)
        value = base64.b64encode(kubeconfig.encode()).decode()
        return 200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]}, {}

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


def _exec_kubeconfig(resource: Json, url: str, ca_pem: bytes) -> str:
    """The kubeconfig AKS returns for an Entra ID cluster with format=exec."""
    name = resource["name"]
    group = resource["id"].split("/")[4]
    user = f"clusterUser_{group}_{name}"
    tenant = resource["properties"].get("aadProfile", {}).get("tenantID", TENANT)
    config = {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                    "server": url,
                },
                "name": name,
            }
        ],
        "contexts": [{"context": {"cluster": name, "user": user}, "name": name}],
        "current-context": name,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "args": [
                            "get-token",
                            "--environment",
                            "AzurePublicCloud",
                            "--server-id",
                            AKS_SERVER_APP,
                            "--client-id",
                            AKS_CLIENT_APP,
                            "--tenant-id",
                            tenant,
                            "--login",
                            "devicecode",
                        ],
                        "command": "kubelogin",
                        "env": None,
                        "provideClusterInfo": False,
                    }
                },
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


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
