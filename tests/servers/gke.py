"""The GKE v1 and Resource Manager v3 REST APIs, as far as mutguard reads them, on 127.0.0.1.

Real google-cloud-container and google-cloud-resource-manager clients (transport="rest") talk to
it two ways:
- directly: `client_options={"api_endpoint": server.url}` (the clients honour http://);
- as an HTTPS proxy, for a subprocess that must run unchanged: HTTPS_PROXY=server.url with
  REQUESTS_CA_BUNDLE=server.ca_file. The server answers CONNECT for the Google API hosts below
  and terminates TLS with a throwaway self-signed certificate (CA=True, so it is its own trust
  anchor) naming them; requests to any other host are refused.

Routes follow google/container/v1/cluster_service.proto and
google/cloud/resourcemanager/v3/projects.proto (HTTP bindings):
- GET  /v1/projects/{project}/locations/{location}/clusters -> ListClustersResponse; the
  location `-` means all. Clusters are the JSON `gcloud container clusters describe` prints.
- GET  /v3/projects:search -> SearchProjectsResponse, paged by nextPageToken (PAGE_SIZE).
- POST /token -> an OAuth2 token response, for Application Default Credentials of type
  authorized_user whose token_uri points here (https://oauth2.googleapis.com/token). The
  access token is TEST_TOKEN: what a cluster's API server (tests/servers/kube.py) is told to
  accept when `set_cluster_endpoint` makes a cluster report that server.
The clients ask for `$alt=json;enum-encoding=int`: enum names are then sent as their numbers,
looked up in the API's own descriptors; values a test gives as numbers (an enum value newer
than the SDK) and unknown fields are sent as they are. Errors are Google's JSON error body
{"error": {"code", "message", "status"}}.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.cloud.container_v1.types import ListClustersResponse
from google.cloud.resourcemanager_v3.types import SearchProjectsResponse
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from .http import LocalHTTPServer, Serving

Json = dict[str, Any]

GOOGLE_HOSTS = ("container.googleapis.com", "cloudresourcemanager.googleapis.com")
TOKEN_HOST = "oauth2.googleapis.com"
PAGE_SIZE = 2  # small, so that three projects already span two pages
TEST_TOKEN = "ya29.mutguard-test-token"

_CLUSTERS = re.compile(r"/v1/projects/([^/]+)/locations/([^/]+)/clusters")
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
_STATUS.update({429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"})


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message
        self.status = status or _STATUS.get(code, "UNKNOWN")

    def body(self) -> Json:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def enums_as_numbers(value: Any, descriptor: Descriptor) -> Any:
    """A message's JSON with enum names replaced by numbers, as the API sends for
    enum-encoding=int; unknown fields and values that are already numbers pass through."""
    if isinstance(value, list):
        return [enums_as_numbers(item, descriptor) for item in value]
    if not isinstance(value, dict):
        return value
    fields = {f.json_name: f for f in descriptor.fields}
    converted = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            converted[key] = item
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            converted[key] = enums_as_numbers(item, field.message_type)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            converted[key] = _enum_number(item, field)
        else:
            converted[key] = item
    return converted


def _enum_number(value: Any, field: FieldDescriptor) -> Any:
    if isinstance(value, list):
        return [_enum_number(item, field) for item in value]
    known = field.enum_type.values_by_name.get(value) if isinstance(value, str) else None
    return known.number if known else value


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    error: ApiError
    remaining: int | None


class _Certificate:
    """A self-signed certificate (CA=True: its own trust anchor) for the Google API hosts."""

    def __init__(self, directory: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mutguard GKE fake")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(host) for host in (*GOOGLE_HOSTS, TOKEN_HOST)]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file = directory / "key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.ca_file, key_file)


class _HttpServer(LocalHTTPServer):
    def __init__(self, fake: GkeServer) -> None:
        super().__init__(_Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests ask requests_seen() instead

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0]
        if host not in (*GOOGLE_HOSTS, TOKEN_HOST):
            self._send_json(403, ApiError(403, f"this proxy does not reach {host}").body())
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.close_connection = True
        try:
            tunnel = self.server.fake.certificate.context.wrap_socket(
                self.connection, server_side=True
            )
        except (ssl.SSLError, OSError):
            return  # the client gave up on the handshake: nothing to serve
        # The tunnelled requests are served by a handler of their own, over TLS.
        _Handler(tunnel, self.client_address, self.server)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        fake = self.server.fake
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        query = {k: v[0] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        fault = fake._note(self.command, target.path, self.headers.get("Authorization"))
        try:
            if fault is not None:
                raise fault
            status, body = 200, fake._route(self.command, target.path, query)
        except ApiError as err:
            status, body = err.code, err.body()
        self._send_json(status, body)

    def _send_json(self, status: int, body: Json) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class GkeServer(Serving):
    """Serves registered clusters and projects; `add_fault` makes a route answer an error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clusters: dict[str, list[Json]] = {}
        self._missing_zones: dict[str, list[str]] = {}
        self._projects: list[Json] = []
        self._faults: list[_Fault] = []
        self._seen: Counter[tuple[str, str]] = Counter()
        self.authorizations: set[str] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="mutguard-gke-")
        self.certificate = _Certificate(Path(self._tmp.name))

    @property
    def ca_file(self) -> Path:
        return self.certificate.ca_file

    def start(self) -> Self:
        self._serve(_HttpServer(self), "gke-fake")
        return self

    def stop(self) -> None:
        self._shut_down()
        self._tmp.cleanup()

    def add_cluster(self, project: str, cluster: Mapping[str, Any]) -> None:
        """Register a cluster as gcloud describes it (its `location` says where it is)."""
        with self._lock:
            self._clusters.setdefault(project, []).append(json.loads(json.dumps(cluster)))

    def set_cluster_endpoint(self, project: str, name: str, url: str, ca_pem: bytes) -> None:
        """Make a registered cluster report this API server (https://HOST:PORT) and CA, where
        GKE reports its own: `endpoint`, and the private endpoint of a cluster whose public
        IP endpoint is off (GKE's `endpoint` is then that private address too)."""
        address = url.removeprefix("https://")
        with self._lock:
            cluster = next(c for c in self._clusters[project] if c["name"] == name)
            cluster["endpoint"] = address
            cluster.setdefault("masterAuth", {})["clusterCaCertificate"] = base64.b64encode(
                ca_pem
            ).decode()
            ip = cluster.get("controlPlaneEndpointsConfig", {}).get("ipEndpointsConfig", {})
            if ip.get("enablePublicEndpoint") is False:
                ip["privateEndpoint"] = address
                if "privateClusterConfig" in cluster:
                    cluster["privateClusterConfig"]["privateEndpoint"] = address
            elif "publicEndpoint" in ip:
                ip["publicEndpoint"] = address

    def add_project(self, project_id: str, number: int, state: str = "ACTIVE") -> None:
        with self._lock:
            self._projects.append(
                {
                    "name": f"projects/{number}",
                    "parent": "organizations/433637338589",
                    "projectId": project_id,
                    "state": state,
                    "displayName": project_id,
                    "createTime": "2024-03-01T09:00:00.000Z",
                    "etag": f'W/"{number:x}"',
                }
            )

    def set_missing_zones(self, project: str, zones: list[str]) -> None:
        with self._lock:
            self._missing_zones[project] = list(zones)

    def add_fault(
        self,
        method: str,
        path_regex: str,
        code: int,
        message: str,
        times: int | None = None,
    ) -> None:
        """Answer matching requests (path without query) with a Google error, `times` times."""
        fault = _Fault(method.upper(), re.compile(path_regex), ApiError(code, message), times)
        with self._lock:
            self._faults.append(fault)

    def requests_seen(self, method: str, path_regex: str = ".*") -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            seen = list(self._seen.items())
        return sum(
            count
            for (seen_method, path), count in seen
            if method.upper() in ("*", seen_method) and pattern.fullmatch(path)
        )

    def _note(self, method: str, path: str, authorization: str | None) -> ApiError | None:
        with self._lock:
            self._seen[method, path] += 1
            if authorization and path != "/token":
                self.authorizations.add(authorization)
            for fault in self._faults:
                if fault.method in ("*", method) and fault.path.fullmatch(path):
                    if fault.remaining == 0:
                        continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault.error
        return None

    def _route(self, method: str, path: str, query: Mapping[str, str]) -> Json:
        as_numbers = "enum-encoding=int" in query.get("$alt", "")
        if method == "POST" and path == "/token":
            return {"access_token": TEST_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        if method != "GET":
            raise ApiError(405, f"{method} {path} is not served by this fake", "UNIMPLEMENTED")
        if path == "/v3/projects:search":
            body, descriptor = self._search_projects(query), SearchProjectsResponse.pb().DESCRIPTOR
        elif match := _CLUSTERS.fullmatch(path):
            body, descriptor = (
                self._list_clusters(*match.groups()),
                ListClustersResponse.pb().DESCRIPTOR,
            )
        else:
            raise ApiError(404, f"no route for {path}")
        return enums_as_numbers(body, descriptor) if as_numbers else body

    def _list_clusters(self, project: str, location: str) -> Json:
        with self._lock:
            clusters = [
                c
                for c in self._clusters.get(project, [])
                if location == "-" or c.get("location") == location
            ]
            missing = list(self._missing_zones.get(project, []))
        body: Json = {"clusters": clusters} if clusters else {}
        if missing:
            body["missingZones"] = missing
        return body

    def _search_projects(self, query: Mapping[str, str]) -> Json:
        with self._lock:
            projects = list(self._projects)
        try:
            start = int(query.get("pageToken") or 0)
        except ValueError:
            raise ApiError(400, "Invalid page token.") from None
        end = start + PAGE_SIZE
        body: Json = {"projects": projects[start:end]}
        if end < len(projects):
            body["nextPageToken"] = str(end)
        return body
