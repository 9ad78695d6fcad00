"""A local HTTPS Kubernetes API server that the real `kubernetes` client talks to.

Read-only (GET; any other method is answered 405 and recorded), served from objects the test
adds, on the API's real paths and in its wire format:

- Lists look like kube-apiserver's: {"kind": "<Kind>List", "apiVersion", "metadata":
  {"resourceVersion", "continue"?, "remainingItemCount"?}, "items"}, and like the real server the
  items of a typed list carry no kind/apiVersion (kubernetes/kubernetes#3030; `kubectl get -o
  json` adds them back client-side). A single GET returns the object with both.
- Paging: `limit` and `continue`. A page holds min(limit, page_size) items; without `limit`,
  everything. Continue tokens are the apiserver's own format (base64url JSON {"v", "rv",
  "start"}) and read a consistent snapshot at their resourceVersion. A malformed token is 400
  "invalid continue token" (as the real server answers); a token from before
  `expire_continue_tokens()` (etcd compaction) or one never issued is 410 reason Expired.
- Authentication: static bearer tokens (`add_token`, optionally expiring after N requests), EKS
  tokens (checked like aws-iam-authenticator, then replayed against moto's STS), anonymous
  requests per `anonymous` ("enabled" | "health-only" | "disabled"). Failures are 401 Status.
- Authorization: everything is allowed to authenticated identities except `forbid()`den
  resources; anonymous gets only /version, /healthz, /livez, /readyz and `allow_anonymous()`
  prefixes (the default system:public-info-viewer binding). Denials are 403 Status with the real
  message. As in the real handler chain: authentication, then authorization, then routing.
- Discovery: /version, /api, /apis, /api/v1, /apis/{group}[/{version}], health endpoints.
- Nonsense, as a broken or hostile server answers: `answer_with()` serves any JSON body on a
  path, `repeat_continue_token()` makes a list hand back the same continue token forever.

Secrets are never stored or served.
"""

import base64
import binascii
import contextlib
import copy
import hashlib
import hmac
import http.client
import json
import re
import socket
import ssl
import sys
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self, get_args
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

from .aws import DUMMY_KEY
from .lifecycle import Startable
from .tls import TestCa

Json = dict[str, Any]
Anonymous = Literal["enabled", "health-only", "disabled"]

DEFAULT_PAGE_SIZE = 2
DEFAULT_CLUSTER_NAME = "mutguard-test"
# What an EKS 1.31 control plane reports (EKS appends "+" to the minor version).
DEFAULT_VERSION: dict[str, str] = {
    "major": "1",
    "minor": "31+",
    "gitVersion": "v1.31.2-eks-7f9249a",
    "gitCommit": "d7ae18cbc3b8cd3e9a0d1e7c8b5b2e9a6f6a2c11",
    "gitTreeState": "clean",
    "buildDate": "2024-10-24T02:41:47Z",
    "goVersion": "go1.22.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}
# EKS's answer to GET /api: the private address of the serving control-plane instance.
SERVER_ADDRESS = "ip-10-0-113-24.ec2.internal:443"

ANONYMOUS_USER = "system:anonymous"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
AUTHENTICATED_GROUP = "system:authenticated"
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
# Granted to everyone by the bootstrap ClusterRole system:public-info-viewer.
PUBLIC_INFO_PATHS = (*HEALTH_PATHS, "/version")

# aws-iam-authenticator (pkg/token/token.go): limits and the query parameters it accepts.
EKS_TOKEN_PREFIX = "k8s-aws-v1."
EKS_TOKEN_MAX_BYTES = 4096
EKS_CLUSTER_HEADER = "x-k8s-aws-id"
EKS_MAX_EXPIRES_SECONDS = 900  # X-Amz-Expires must be 0..900; STS itself ignores it
EKS_URL_LIFETIME = timedelta(minutes=15)  # a presigned URL is good 15 min after X-Amz-Date
_EKS_QUERY_PARAMETERS = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STS_TIMEOUT_SECONDS = 10.0
HANDSHAKE_TIMEOUT_SECONDS = 10.0
JOIN_TIMEOUT_SECONDS = 5.0

_CONTINUE_VERSION = "meta.k8s.io/v1"
_NO_ANSWER = object()  # no answer_with() body for a path: answer it as the real server does
_EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


@dataclass(frozen=True)
class ResourceType:
    kind: str
    group_version: str  # "v1" for the core group
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]

    @property
    def qualified(self) -> str:
        """The resource as error messages name it: "pods", "clusterroles.rbac.authorization..."."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_RBAC = "rbac.authorization.k8s.io/v1"
_ADMISSION = "admissionregistration.k8s.io/v1"
RESOURCE_TYPES: dict[str, ResourceType] = {
    rt.kind: rt
    for rt in (
        ResourceType("Namespace", "v1", "namespaces", False),
        ResourceType("Node", "v1", "nodes", False),
        ResourceType("Pod", "v1", "pods", True),
        ResourceType("ServiceAccount", "v1", "serviceaccounts", True),
        ResourceType("ConfigMap", "v1", "configmaps", True),
        ResourceType("Service", "v1", "services", True),
        ResourceType("ClusterRole", _RBAC, "clusterroles", False),
        ResourceType("ClusterRoleBinding", _RBAC, "clusterrolebindings", False),
        ResourceType("Role", _RBAC, "roles", True),
        ResourceType("RoleBinding", _RBAC, "rolebindings", True),
        ResourceType("Deployment", "apps/v1", "deployments", True),
        ResourceType("DaemonSet", "apps/v1", "daemonsets", True),
        ResourceType("StatefulSet", "apps/v1", "statefulsets", True),
        ResourceType("ReplicaSet", "apps/v1", "replicasets", True),
        ResourceType("Job", "batch/v1", "jobs", True),
        ResourceType("CronJob", "batch/v1", "cronjobs", True),
        ResourceType(
            "ValidatingWebhookConfiguration", _ADMISSION, "validatingwebhookconfigurations", False
        ),
        ResourceType(
            "MutatingWebhookConfiguration", _ADMISSION, "mutatingwebhookconfigurations", False
        ),
        ResourceType(
            "CustomResourceDefinition",
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            False,
        ),
    )
}
_BY_PATH: dict[tuple[str, str], ResourceType] = {
    (rt.group_version, rt.plural): rt for rt in RESOURCE_TYPES.values()
}


class KubeError(Exception):
    """An API error, sent as a metav1 Status."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Json:
        body: Json = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = dict(self.details)
        body["code"] = self.code
        return body


class _AuthFailure(Exception):
    """Why a credential was refused: recorded for the test, never shown to the client."""


def _unauthorized() -> KubeError:
    return KubeError(401, "Unauthorized", "Unauthorized")


def _not_found() -> KubeError:
    return KubeError(404, "NotFound", "the server could not find the requested resource", {})


def _bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def _under(path: str, prefix: str) -> bool:
    """True if `path` is `prefix` or below it, segment-wise ("/api" does not cover "/apis")."""
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class _Identity:
    user: str
    groups: tuple[str, ...]

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset((self.user, *self.groups))


_ANONYMOUS = _Identity(ANONYMOUS_USER, (UNAUTHENTICATED_GROUP,))


@dataclass
class _Token:
    identity: _Identity
    remaining: int | None


@dataclass(frozen=True)
class _RequestInfo:
    """The apiserver's view of a path (k8s.io/apiserver RequestInfoFactory, GET only)."""

    path: str
    is_resource: bool = False
    group_version: str = ""
    namespace: str | None = None
    plural: str = ""
    name: str | None = None
    subresource: str | None = None

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]


def _request_info(path: str) -> _RequestInfo:
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group_version, rest = parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return _RequestInfo(path)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return _RequestInfo(path, True, group_version, namespace, rest[0], name, subresource)


# --- continue tokens, as k8s.io/apiserver/pkg/storage encodes them ---------------------------


def _encode_continue(resource_version: int, start: str) -> str:
    raw = json.dumps(
        {"v": _CONTINUE_VERSION, "rv": resource_version, "start": start}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        version, resource_version, start = decoded["v"], decoded["rv"], decoded["start"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _bad_request("invalid continue token: continue key is not valid") from None
    if version != _CONTINUE_VERSION:
        raise _bad_request("invalid continue token: continue key is not valid: incorrect version")
    if not isinstance(resource_version, int) or not isinstance(start, str) or not start:
        raise _bad_request("invalid continue token: continue key is not valid")
    return resource_version, start


# --- EKS tokens -------------------------------------------------------------------------------


def canonical_arn(arn: str) -> str:
    """The IAM ARN that aws-iam-authenticator maps: assumed-role -> role, role paths dropped."""
    match = re.fullmatch(r"arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/[^/]+", arn)
    if match:
        return f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}"
    match = re.fullmatch(r"arn:([\w-]+):iam::(\d{12}):role/(?:.+/)?([^/]+)", arn)
    if match:
        return f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}"
    return arn


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _sigv4_signatures(
    secret: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    amz_date: str,
    scope: str,
) -> set[str]:
    """The SigV4 query signatures of `GET /?params` (payload signed or not), as STS checks."""
    encoded = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params if k != "X-Amz-Signature"
    )
    canonical_query = "&".join(f"{k}={v}" for k, v in encoded)
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    date, region, service, terminator = scope.split("/")
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    signatures = set()
    for payload in (_EMPTY_SHA256, _UNSIGNED_PAYLOAD):
        canonical = "\n".join(
            ["GET", "/", canonical_query, canonical_headers, ";".join(names), payload]
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, digest])
        signatures.add(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest())
    return signatures


# --- the server -------------------------------------------------------------------------------


class _HttpsServer(ThreadingHTTPServer):
    """ThreadingHTTPServer over TLS that tracks its connections and their threads for stop()."""

    # socketserver's default backlog of 5 drops SYNs of a burst of clients (retried after 1 s).
    request_queue_size = 128
    daemon_threads = True
    block_on_close = False  # stop() shuts the sockets first, then joins the threads itself

    def __init__(self, api: "KubeApiServer", context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api
        self.tls = context
        self.lock = threading.Lock()
        self.open_sockets: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # The handshake happens in the connection's own thread, not in the accept loop.
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="kube-api-conn",
            daemon=True,
        )
        with self.lock:
            self.threads.add(thread)
            self.open_sockets.add(request)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.open_sockets.discard(request)
                self.threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request (or stop() shutting its socket) is not an error.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # e.g. a client that does not trust the CA; nothing to answer
        request.settimeout(None)
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for urllib3's pool; Content-Length always set
    disable_nagle_algorithm = True
    server: _HttpsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests query requests_seen() instead

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        if length.isdigit() and "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            self.rfile.read(int(length))  # a body is never used, but must be consumed
        else:
            self.close_connection = True  # the body was not read: the stream is unusable
        try:
            status, content_type, body = self.server.api._answer(
                self.command, self.path, self.headers.get("Authorization")
            )
        except Exception as err:  # a bug in this server: say so instead of dropping the line
            error = KubeError(500, "InternalError", f"test server error: {err!r}")
            status, content_type, body = KubeApiServer._json(error.code, error.status())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class KubeApiServer(Startable):
    """A Kubernetes API server on https://127.0.0.1:PORT with a certificate from `ca`.

    `anonymous`, `version`, `sts_url` and `cluster_name` may be changed at any time. EKS tokens
    need `sts_url` (moto_server's URL: the presigned URL must point at it, as a real one must
    point at STS) and are bound to `cluster_name`.
    """

    def __init__(
        self,
        ca: TestCa,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        anonymous: Anonymous = "enabled",
        version: Mapping[str, str] | None = None,
        sts_url: str | None = None,
        cluster_name: str = DEFAULT_CLUSTER_NAME,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._ca = ca
        self._page_size = page_size
        self.anonymous = anonymous
        self.version: dict[str, str] = dict(version or DEFAULT_VERSION)
        self.sts_url = sts_url
        self.cluster_name = cluster_name
        self._lock = threading.Lock()
        # kind -> etcd-style key ("ns/name" or "name") -> versions [(resourceVersion, obj)]
        self._store: dict[str, dict[str, list[tuple[int, Json | None]]]] = {}
        self._resource_version = 1
        self._compacted = 0
        self._tokens: dict[str, _Token] = {}
        self._iam: dict[str, _Identity] = {}  # canonical ARN -> user template, groups
        # moto's conventional dummy keys (what the `aws` fixture uses) are known from the start.
        self._aws_secrets: dict[str, str] = {DUMMY_KEY: DUMMY_KEY}
        self._forbidden: set[tuple[str, str]] = set()
        self._anonymous_prefixes: list[str] = list(PUBLIC_INFO_PATHS)
        self._answers: list[tuple[re.Pattern[str], Any]] = []
        self._repeating: list[re.Pattern[str]] = []
        self._seen: Counter[tuple[str, str]] = Counter()
        self._identities: dict[str, None] = {}  # insertion-ordered set
        self._auth_failures: list[str] = []
        self._httpd: _HttpsServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def anonymous(self) -> Anonymous:
        return self._anonymous

    @anonymous.setter
    def anonymous(self, mode: Anonymous) -> None:
        if mode not in get_args(Anonymous):
            raise ValueError(f"anonymous must be one of {get_args(Anonymous)}, got {mode!r}")
        self._anonymous = mode

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("KubeApiServer is not started")
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def ca_pem(self) -> bytes:
        """The CA that signed the serving certificate (what EKS reports as certificateAuthority)."""
        return self._ca.ca_pem

    # --- lifecycle ---

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("KubeApiServer is already started")
        self._httpd = _HttpsServer(self, self._ca.server_context())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kube-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT_SECONDS)
            self._thread = None
        # Connection threads idle on keep-alive sockets until the client hangs up; shutting the
        # sockets ends them now, and then they are joined.
        with httpd.lock:
            open_sockets, threads = list(httpd.open_sockets), list(httpd.threads)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=JOIN_TIMEOUT_SECONDS)

    # --- objects ---

    def add(self, obj: Mapping[str, Any]) -> None:
        """Store (or replace) one object; it gets a resourceVersion, and a uid if it has none."""
        rt, key, stored = self._prepare(obj)
        with self._lock:
            self._resource_version += 1
            stored["metadata"]["resourceVersion"] = str(self._resource_version)
            versions = self._store.setdefault(rt.kind, {}).setdefault(key, [])
            versions.append((self._resource_version, stored))

    def add_list(self, kubectl_list: Mapping[str, Any]) -> None:
        """Store every item of a `kubectl get ... -o json` List (items must carry their kind)."""
        for item in kubectl_list.get("items") or []:
            self.add(item)

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete an object (lists from then on omit it; open continue tokens still see it)."""
        rt = self._resource_type(kind)
        key = f"{namespace}/{name}" if rt.namespaced else name
        with self._lock:
            versions = self._store.get(kind, {}).get(key)
            if not versions or versions[-1][1] is None:
                raise KeyError(f"no {kind} {key}")
            self._resource_version += 1
            versions.append((self._resource_version, None))

    def expire_continue_tokens(self) -> None:
        """Compact history, like etcd: every continue token issued so far now gets 410 Expired."""
        with self._lock:
            self._resource_version += 1
            self._compacted = self._resource_version

    # --- authentication and authorization ---

    def add_token(
        self, token: str, user: str, groups: Sequence[str] = (), expires_after: int | None = None
    ) -> None:
        """Accept `token` as `user` (+ system:authenticated); 401 after `expires_after` uses."""
        if token.startswith(EKS_TOKEN_PREFIX):
            raise ValueError(f"{EKS_TOKEN_PREFIX}... tokens are checked against STS")
        identity = _Identity(user, (*groups, AUTHENTICATED_GROUP))
        with self._lock:
            self._tokens[token] = _Token(identity, expires_after)

    def add_iam_identity(self, arn: str, user: str, groups: Sequence[str] = ()) -> None:
        """Map an IAM user or role ARN (a role matches all its assumed-role sessions).

        `user` may use the aws-auth placeholders {{AccountID}} and {{SessionName}}.
        """
        with self._lock:
            self._iam[canonical_arn(arn)] = _Identity(user, tuple(groups))

    def add_aws_secret(self, access_key_id: str, secret_access_key: str) -> None:
        """Let EKS tokens signed with this key be checked (moto's dummy key is preset).

        Real STS rejects a presigned URL whose signature does not cover the cluster name the API
        server sends; moto checks no signature at all, so this server checks it, which needs the
        secret. Keys that moto's STS issued (AssumeRole) are found in moto's state; tokens
        signed with any other unknown key are refused, as STS refuses unknown keys.
        """
        with self._lock:
            self._aws_secrets[access_key_id] = secret_access_key

    def forbid(self, user_or_group: str, resource: str) -> None:
        """403 for `user_or_group` on `resource`: a plural ("pods"), plural.group
        ("clusterroles.rbac.authorization.k8s.io"), "*" (every resource), or a non-resource
        path prefix ("/api")."""
        with self._lock:
            self._forbidden.add((user_or_group, resource))

    def allow_anonymous(self, path_prefix: str) -> None:
        """Let anonymous requests through authorization under `path_prefix` (segment-wise)."""
        with self._lock:
            self._anonymous_prefixes.append(path_prefix)

    # --- nonsense ---

    def answer_with(self, path_regex: str, body: Any) -> None:
        """Answer GETs whose path fully matches with `body` (any JSON value) and 200, after
        authentication and authorization, instead of what the path would serve."""
        with self._lock:
            self._answers.append((re.compile(path_regex), copy.deepcopy(body)))

    def repeat_continue_token(self, path_regex: str) -> None:
        """Every page of a list whose path fully matches carries the same continue token, which
        reads the first page again: a server that never ends a list."""
        with self._lock:
            self._repeating.append(re.compile(path_regex))

    def _nonsense_for(self, path: str) -> Any:
        with self._lock:
            return next(
                (copy.deepcopy(body) for p, body in self._answers if p.fullmatch(path)),
                _NO_ANSWER,
            )

    def _repeats(self, path: str) -> bool:
        with self._lock:
            return any(p.fullmatch(path) for p in self._repeating)

    # --- what happened ---

    def requests_seen(self, method: str, path_regex: str) -> int:
        """Requests (refused ones included) whose path, without query, fully matches."""
        pattern = re.compile(path_regex)
        with self._lock:
            seen = list(self._seen.items())
        return sum(
            count
            for (seen_method, path), count in seen
            if method.upper() in ("*", seen_method) and pattern.fullmatch(path)
        )

    def identities_seen(self) -> list[str]:
        """Users that authenticated (system:anonymous included), in order of first request."""
        with self._lock:
            return list(self._identities)

    def auth_failures(self) -> list[str]:
        """Why each refused credential was refused (for debugging tests; clients see 401)."""
        with self._lock:
            return list(self._auth_failures)

    # --- request handling (called from connection threads) ---

    def _answer(
        self, method: str, target: str, authorization: str | None
    ) -> tuple[int, str, bytes]:
        split = urlsplit(target)
        path = split.path or "/"
        with self._lock:
            self._seen[method, path] += 1
        try:
            identity = self._authenticate(authorization, path)
            with self._lock:
                self._identities.setdefault(identity.user)
            if method != "GET":  # refused after authentication, so tests see who tried
                raise KubeError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                    {},
                )
            info = _request_info(path)
            self._authorize(identity, info)
            query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            nonsense = self._nonsense_for(path)
            if nonsense is not _NO_ANSWER:
                return self._json(200, nonsense)
            if info.is_resource:
                answer = self._resource(info, query)
                if info.name is None and self._repeats(path):
                    # -1: "continue at the present", from the first key on, every time.
                    answer["metadata"]["continue"] = _encode_continue(-1, "\x00")
                return self._json(200, answer)
            return self._non_resource(path)
        except KubeError as err:
            return self._json(err.code, err.status())

    @staticmethod
    def _json(status: int, payload: Any) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(payload).encode()

    def _authenticate(self, authorization: str | None, path: str) -> _Identity:
        if authorization is None:
            if self.anonymous == "enabled" or (
                self.anonymous == "health-only" and any(_under(path, p) for p in HEALTH_PATHS)
            ):
                return _ANONYMOUS
            raise _unauthorized()
        try:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise _AuthFailure("not a bearer token")
            if token.startswith(EKS_TOKEN_PREFIX):
                return self._eks_identity(token)
            with self._lock:
                record = self._tokens.get(token)
                if record is None:
                    raise _AuthFailure("unknown bearer token")
                if record.remaining is not None:
                    if record.remaining <= 0:
                        raise _AuthFailure(f"token of {record.identity.user} has expired")
                    record.remaining -= 1
                return record.identity
        except _AuthFailure as failure:
            with self._lock:
                self._auth_failures.append(str(failure))
            raise _unauthorized() from None

    def _eks_identity(self, token: str) -> _Identity:
        """Verify an EKS token as aws-iam-authenticator does, then ask STS who signed it."""
        sts_url = self.sts_url
        if sts_url is None:
            raise _AuthFailure("EKS token, but no sts_url is configured")
        if len(token) > EKS_TOKEN_MAX_BYTES:
            raise _AuthFailure("token is too large")
        encoded = token.removeprefix(EKS_TOKEN_PREFIX)
        try:
            if "=" in encoded:
                raise ValueError("padding")
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, ValueError) as err:
            raise _AuthFailure(f"token is not base64url without padding: {err}") from None
        presigned, sts = urlsplit(url), urlsplit(sts_url)
        # The real check is an allowlist of STS hostnames over https; here STS is moto.
        if (presigned.scheme, presigned.netloc) != (sts.scheme, sts.netloc):
            raise _AuthFailure(f"unexpected host {presigned.netloc!r} in pre-signed URL")
        if presigned.path != "/":
            raise _AuthFailure("unexpected path in pre-signed URL")
        pairs = parse_qsl(presigned.query, keep_blank_values=True)
        params: dict[str, str] = {}
        for key, value in pairs:
            if key.lower() not in _EKS_QUERY_PARAMETERS:
                raise _AuthFailure(f"non-whitelisted query parameter {key!r}")
            if key.lower() in params:
                raise _AuthFailure("query parameter with multiple values not supported")
            params[key.lower()] = value
        if params.get("action") != "GetCallerIdentity" or params.get("version") != "2011-06-15":
            raise _AuthFailure("not a GetCallerIdentity (2011-06-15) pre-signed URL")
        signed = params.get("x-amz-signedheaders", "").lower().split(";")
        if EKS_CLUSTER_HEADER not in signed:
            raise _AuthFailure(f"client did not sign the {EKS_CLUSTER_HEADER} header")
        expires = params.get("x-amz-expires", "")
        if not expires.isdigit() or int(expires) > EKS_MAX_EXPIRES_SECONDS:
            raise _AuthFailure(f"invalid X-Amz-Expires {expires!r}")
        amz_date = params.get("x-amz-date", "")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise _AuthFailure(f"invalid X-Amz-Date {amz_date!r}") from None
        if datetime.now(UTC) > signed_at + EKS_URL_LIFETIME:
            raise _AuthFailure("X-Amz-Date is expired (15 minute expiration)")
        self._check_signature(params, pairs, presigned.netloc, signed, amz_date)
        arn = self._caller_arn(sts, presigned.path + "?" + presigned.query, params)
        with self._lock:
            mapped = self._iam.get(canonical_arn(arn))
        if mapped is None:
            raise _AuthFailure(f"ARN is not mapped: {arn}")
        account = arn.split(":")[4]
        session = arn.rsplit("/", 1)[1] if ":assumed-role/" in arn else ""
        user = mapped.user.replace("{{AccountID}}", account).replace("{{SessionName}}", session)
        return _Identity(user, (*mapped.groups, AUTHENTICATED_GROUP))

    def _check_signature(
        self,
        params: Mapping[str, str],
        pairs: Sequence[tuple[str, str]],
        host: str,
        signed_headers: Sequence[str],
        amz_date: str,
    ) -> None:
        """What STS does and moto skips: the signature must cover the cluster name sent."""
        access_key, _, scope = params.get("x-amz-credential", "").partition("/")
        with self._lock:
            secret = self._aws_secrets.get(access_key)
        if secret is None:
            secret = self._issued_secret(access_key)
        if secret is None:
            raise _AuthFailure(f"STS: unknown access key {access_key!r}")
        # The verifier sends only these two headers; a URL that signed more cannot verify.
        sent = {"host": host, EKS_CLUSTER_HEADER: self.cluster_name}
        if set(signed_headers) - set(sent) or scope.count("/") != 3:
            raise _AuthFailure("STS: SignatureDoesNotMatch (signed headers or scope)")
        headers = {name: sent[name] for name in signed_headers}
        expected = _sigv4_signatures(secret, pairs, headers, amz_date, scope)
        given = params.get("x-amz-signature", "")
        if not any(hmac.compare_digest(given, signature) for signature in expected):
            raise _AuthFailure("STS: SignatureDoesNotMatch (wrong cluster name or altered URL)")

    def _issued_secret(self, access_key: str) -> str | None:
        """The secret of a session key that moto's STS issued (AssumeRole), from moto's state:
        real STS knows every key it issued, even one minted in the middle of a scan."""
        if self.sts_url is None:
            return None
        sts = urlsplit(self.sts_url)
        conn = http.client.HTTPConnection(sts.hostname, sts.port, timeout=STS_TIMEOUT_SECONDS)
        try:
            conn.request("GET", "/moto-api/data.json")
            state = json.loads(conn.getresponse().read())
        except (OSError, ValueError):
            return None
        finally:
            conn.close()
        sessions = state.get("sts", {}).get("AssumedRole", [])
        return next(
            (s["secret_access_key"] for s in sessions if s.get("access_key_id") == access_key),
            None,
        )

    def _caller_arn(self, sts: Any, target: str, params: Mapping[str, str]) -> str:
        """Replay the presigned GET against moto; moto needs the query's SigV4 as a header."""
        conn = http.client.HTTPConnection(sts.hostname, sts.port, timeout=STS_TIMEOUT_SECONDS)
        headers = {
            EKS_CLUSTER_HEADER: self.cluster_name,
            "Accept": "application/json",
            # Without it moto routes the GET to S3 (ListBuckets) instead of STS.
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={params.get('x-amz-credential', '')}, "
                f"SignedHeaders={params.get('x-amz-signedheaders', '')}, "
                f"Signature={params.get('x-amz-signature', '')}"
            ),
        }
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except OSError as err:
            raise _AuthFailure(f"STS: error during GET: {err}") from None
        finally:
            conn.close()
        if response.status != 200:
            raise _AuthFailure(f"STS: expected 200, got {response.status}")
        # moto answers XML whatever Accept says (real STS honours application/json).
        try:
            root = ElementTree.fromstring(body)  # noqa: S314 - moto's answer on 127.0.0.1
        except ElementTree.ParseError as err:
            raise _AuthFailure(f"STS: unreadable answer: {err}") from None
        arns = [el.text for el in root.iter() if el.tag.rpartition("}")[2] == "Arn" and el.text]
        if len(arns) != 1:
            raise _AuthFailure("STS: no Arn in GetCallerIdentityResponse")
        return arns[0]

    def _authorize(self, identity: _Identity, info: _RequestInfo) -> None:
        with self._lock:
            forbidden = {resource for who, resource in self._forbidden if who in identity.subjects}
            anonymous_ok = any(_under(info.path, p) for p in self._anonymous_prefixes)
        if info.is_resource:
            rt = _BY_PATH.get((info.group_version, info.plural))
            qualified = rt.qualified if rt else ".".join(filter(None, (info.plural, info.group)))
            denied = bool(forbidden & {"*", info.plural, qualified})
        else:
            denied = any(r.startswith("/") and _under(info.path, r) for r in forbidden)
        if identity == _ANONYMOUS and not anonymous_ok:
            denied = True
        if not denied:
            return
        user = identity.user
        if not info.is_resource:
            raise KubeError(
                403, "Forbidden", f'forbidden: User "{user}" cannot get path "{info.path}"', {}
            )
        verb = "list" if info.name is None else "get"
        scope = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
        target = f'{qualified} "{info.name}"' if info.name else qualified
        resource = f"{info.plural}/{info.subresource}" if info.subresource else info.plural
        details = {"name": info.name} if info.name else {}
        if info.group:
            details["group"] = info.group
        details["kind"] = info.plural
        raise KubeError(
            403,
            "Forbidden",
            f'{target} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
            f'group "{info.group}" {scope}',
            details,
        )

    def _resource(self, info: _RequestInfo, query: Mapping[str, str]) -> Json:
        rt = _BY_PATH.get((info.group_version, info.plural))
        if rt is None or info.subresource or (info.namespace and not rt.namespaced):
            raise _not_found()
        if info.name is None:
            return self._list(rt, info.namespace, query)
        if rt.namespaced and not info.namespace:
            raise _not_found()
        key = f"{info.namespace}/{info.name}" if rt.namespaced else info.name
        with self._lock:
            versions = self._store.get(rt.kind, {}).get(key) or [(0, None)]
            obj = versions[-1][1]
        if obj is None:
            details = {"name": info.name, **({"group": rt.group} if rt.group else {})}
            raise KubeError(
                404,
                "NotFound",
                f'{rt.qualified} "{info.name}" not found',
                {**details, "kind": rt.plural},
            )
        return {"kind": rt.kind, "apiVersion": rt.group_version, **copy.deepcopy(obj)}

    def _list(self, rt: ResourceType, namespace: str | None, query: Mapping[str, str]) -> Json:
        if query.get("watch") not in (None, "", "false", "0"):
            raise _bad_request("watch is not supported by this test server")
        for unsupported in ("labelSelector", "fieldSelector"):
            if query.get(unsupported):
                raise _bad_request(f"{unsupported} is not supported by this test server")
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise _bad_request(f"invalid limit {query['limit']!r}") from None
        start = ""
        with self._lock:
            resource_version = self._resource_version
            if query.get("continue"):
                token_version, start = _decode_continue(query["continue"])
                if token_version == -1:  # an "inconsistent" token: continue at the present
                    token_version = resource_version
                if not self._compacted <= token_version <= resource_version:
                    raise KubeError(410, "Expired", _EXPIRED_MESSAGE)
                resource_version = token_version
            prefix = f"{namespace}/" if namespace else ""
            snapshot = []
            for key, versions in self._store.get(rt.kind, {}).items():
                if key < start or not key.startswith(prefix):
                    continue
                visible = [obj for rv, obj in versions if rv <= resource_version]
                if visible and visible[-1] is not None:
                    snapshot.append((key, visible[-1]))
        snapshot.sort(key=lambda entry: entry[0])
        size = min(limit, self._page_size) if limit > 0 else len(snapshot)
        page, rest = snapshot[:size], snapshot[size:]
        metadata: Json = {"resourceVersion": str(resource_version)}
        if rest:
            metadata["continue"] = _encode_continue(resource_version, page[-1][0] + "\x00")
            metadata["remainingItemCount"] = len(rest)
        # Like kube-apiserver, items of a typed list carry no kind or apiVersion.
        items = [
            {k: v for k, v in copy.deepcopy(obj).items() if k not in ("kind", "apiVersion")}
            for _, obj in page
        ]
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.group_version,
            "metadata": metadata,
            "items": items,
        }

    def _non_resource(self, path: str) -> tuple[int, str, bytes]:
        if any(_under(path, p) for p in HEALTH_PATHS):
            return 200, "text/plain; charset=utf-8", b"ok"
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return self._json(200, dict(self.version))
        if parts == ["api"]:
            return self._json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": SERVER_ADDRESS}
                    ],
                },
            )
        groups = _api_groups()
        if parts == ["apis"]:
            return self._json(
                200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(groups.values())}
            )
        if parts == ["api", "v1"]:
            return self._json(200, _resource_list("v1"))
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return self._json(200, {"kind": "APIGroup", "apiVersion": "v1", **groups[parts[1]]})
        if len(parts) == 3 and parts[0] == "apis" and parts[1] in groups:
            group_version = f"{parts[1]}/{parts[2]}"
            if any(rt.group_version == group_version for rt in RESOURCE_TYPES.values()):
                return self._json(200, _resource_list(group_version))
        raise _not_found()

    def _resource_type(self, kind: str) -> ResourceType:
        if kind == "Secret":
            raise ValueError("this server never stores or serves Secrets")
        try:
            return RESOURCE_TYPES[kind]
        except KeyError:
            raise ValueError(f"kind {kind!r} is not served (add it to RESOURCE_TYPES)") from None

    def _prepare(self, obj: Mapping[str, Any]) -> tuple[ResourceType, str, Json]:
        rt = self._resource_type(str(obj.get("kind")))
        if obj.get("apiVersion", rt.group_version) != rt.group_version:
            raise ValueError(f"{rt.kind} is served as {rt.group_version}, not {obj['apiVersion']}")
        stored: Json = copy.deepcopy(dict(obj))
        stored["apiVersion"] = rt.group_version
        metadata = stored.setdefault("metadata", {})
        name = metadata.get("name")
        if not name:
            raise ValueError(f"{rt.kind} needs metadata.name")
        if rt.namespaced:
            metadata.setdefault("namespace", "default")
        elif "namespace" in metadata:
            raise ValueError(f"{rt.kind} is cluster-scoped and has no namespace")
        metadata.setdefault("uid", str(uuid.uuid4()))
        if not metadata.get("creationTimestamp"):
            metadata["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        key = f"{metadata['namespace']}/{name}" if rt.namespaced else name
        return rt, key, stored


def _api_groups() -> dict[str, Json]:
    """APIGroup entries for the groups served, keyed by group name (core excluded)."""
    groups: dict[str, Json] = {}
    for rt in RESOURCE_TYPES.values():
        if rt.group and rt.group not in groups:
            version = {"groupVersion": rt.group_version, "version": rt.group_version.split("/")[1]}
            groups[rt.group] = {
                "name": rt.group,
                "versions": [version],
                "preferredVersion": version,
            }
    return groups


def _resource_list(group_version: str) -> Json:
    resources: Iterable[ResourceType] = (
        rt for rt in RESOURCE_TYPES.values() if rt.group_version == group_version
    )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": rt.plural,
                "singularName": rt.kind.lower(),
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "list"],
            }
            for rt in resources
        ],
    }
