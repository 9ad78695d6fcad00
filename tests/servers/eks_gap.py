"""The EKS APIs moto_server lacks, in the real rest-json wire format; everything else is proxied.

botocore reaches this server through AWS_ENDPOINT_URL_EKS. Access entries, their associated
access policies and OIDC identity provider configs are answered from an in-memory registry that
the test fills; every other request (ListClusters, DescribeCluster, ...) is forwarded unchanged
to the upstream moto_server. Routes follow botocore's EKS service model (2017-11-01).

Known simplification: the registry is keyed by (region, cluster) only, not by account, because
the account behind an access key is known only to moto.
"""

import base64
import copy
import dataclasses
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from .http import LocalHTTPServer, Serving
from .relay import Answer, Upstream, send_answer

Json = dict[str, Any]

# The server-side page size cap: small, so that a handful of registered items already forces
# botocore's paginator through several pages.
DEFAULT_PAGE_SIZE = 2

# SigV4: "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/eks/aws4_request, ..."
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/")


class ApiError(Exception):
    """An AWS rest-json error: status, `x-amzn-ErrorType` header and {"message": ...} body."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


def _not_found(message: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", message)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameterException", message)


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    error_type: str
    message: str
    remaining: int | None  # None: answer every matching request, forever
    headers: dict[str, str]
    region: str | None
    answer: bytes | None = None  # a 200 with this body instead of an error (add_malformed_answer)

    def matches(self, method: str, path: str, region: str | None) -> bool:
        return (
            self.method in ("*", method)
            and self.path.fullmatch(path) is not None
            and self.region in (None, region)
        )


@dataclass
class _AccessEntry:
    entry: Json
    policies: list[Json]


def _page(items: Sequence[Any], query: Mapping[str, str], page_size: int) -> tuple[list[Any], Json]:
    """Slice one page; the token is the offset of the next item, opaque to botocore."""
    try:
        start = int(query.get("nextToken") or 0)
        max_results = int(query.get("maxResults") or page_size)
    except ValueError as err:
        raise _invalid(f"Invalid paging parameter: {err}") from None
    if not 0 <= start <= len(items):
        raise _invalid("The nextToken is invalid.")
    if not 1 <= max_results <= 100:
        raise _invalid("maxResults must be between 1 and 100.")
    end = start + min(max_results, page_size)
    token: Json = {"nextToken": str(end)} if end < len(items) else {}
    return list(items[start:end]), token


class _Registry:
    """What the test registered, per (region, cluster); all methods are thread-safe."""

    def __init__(self, page_size: int) -> None:
        self._page_size = page_size
        self._lock = threading.Lock()
        self._access: dict[tuple[str, str], dict[str, _AccessEntry]] = {}
        self._oidc: dict[tuple[str, str], dict[str, Json]] = {}

    def add_access_entry(
        self, region: str, cluster: str, entry: Mapping[str, Any], policies: Sequence[Json]
    ) -> None:
        if "principalArn" not in entry:
            raise ValueError("an access entry needs a principalArn")
        # Copies, so that later edits by the test cannot change what was registered.
        stored = _AccessEntry(copy.deepcopy(dict(entry)), copy.deepcopy(list(policies)))
        stored.entry.setdefault("clusterName", cluster)
        with self._lock:
            self._access.setdefault((region, cluster), {})[entry["principalArn"]] = stored

    def add_oidc_config(self, region: str, cluster: str, oidc: Mapping[str, Any]) -> None:
        if "identityProviderConfigName" not in oidc:
            raise ValueError("an OIDC config needs an identityProviderConfigName")
        stored = copy.deepcopy(dict(oidc))
        stored.setdefault("clusterName", cluster)
        stored.setdefault("status", "ACTIVE")
        with self._lock:
            self._oidc.setdefault((region, cluster), {})[oidc["identityProviderConfigName"]] = (
                stored
            )

    # Route handlers share one signature: (region, path parameters, query, body) -> response.

    def list_access_entries(
        self, region: str, args: Sequence[str], query: Mapping[str, str], body: bytes
    ) -> Json:
        (cluster,) = args
        with self._lock:
            records = list(self._access.get((region, cluster), {}).values())
        wanted_policy = query.get("associatedPolicyArn")
        if wanted_policy:
            records = [
                r for r in records if any(p["policyArn"] == wanted_policy for p in r.policies)
            ]
        page, token = _page([r.entry["principalArn"] for r in records], query, self._page_size)
        return {"accessEntries": page, **token}

    def describe_access_entry(
        self, region: str, args: Sequence[str], query: Mapping[str, str], body: bytes
    ) -> Json:
        cluster, principal = args
        return {"accessEntry": self._access_entry(region, cluster, principal).entry}

    def list_associated_access_policies(
        self, region: str, args: Sequence[str], query: Mapping[str, str], body: bytes
    ) -> Json:
        cluster, principal = args
        policies = self._access_entry(region, cluster, principal).policies
        page, token = _page(policies, query, self._page_size)
        return {
            "clusterName": cluster,
            "principalArn": principal,
            "associatedAccessPolicies": page,
            **token,
        }

    def list_identity_provider_configs(
        self, region: str, args: Sequence[str], query: Mapping[str, str], body: bytes
    ) -> Json:
        (cluster,) = args
        with self._lock:
            names = list(self._oidc.get((region, cluster), {}))
        page, token = _page(names, query, self._page_size)
        return {"identityProviderConfigs": [{"type": "oidc", "name": n} for n in page], **token}

    def describe_identity_provider_config(
        self, region: str, args: Sequence[str], query: Mapping[str, str], body: bytes
    ) -> Json:
        (cluster,) = args
        try:
            wanted = json.loads(body or b"{}")["identityProviderConfig"]
            kind, name = wanted["type"], wanted["name"]
        except (ValueError, KeyError, TypeError):
            raise _invalid("identityProviderConfig with type and name is required.") from None
        with self._lock:
            oidc = self._oidc.get((region, cluster), {}).get(name)
        if kind != "oidc" or oidc is None:
            raise _not_found(f"Identity provider config {kind}/{name} not found in {cluster}.")
        return {"identityProviderConfig": {"oidc": oidc}}

    def _access_entry(self, region: str, cluster: str, principal: str) -> _AccessEntry:
        with self._lock:
            record = self._access.get((region, cluster), {}).get(principal)
        if record is None:
            raise _not_found(f"No access entry for {principal} in cluster {cluster}.")
        return record


_Route = Callable[[_Registry, str, Sequence[str], Mapping[str, str], bytes], Json]

# Matched against the raw path: botocore percent-encodes the principal ARN's "/" as %2F, so
# splitting on "/" before unquoting keeps the ARN in one segment.
_ROUTES: list[tuple[str, re.Pattern[str], _Route]] = [
    ("GET", re.compile(r"/clusters/([^/]+)/access-entries"), _Registry.list_access_entries),
    (
        "GET",
        re.compile(r"/clusters/([^/]+)/access-entries/([^/]+)"),
        _Registry.describe_access_entry,
    ),
    (
        "GET",
        re.compile(r"/clusters/([^/]+)/access-entries/([^/]+)/access-policies"),
        _Registry.list_associated_access_policies,
    ),
    (
        "GET",
        re.compile(r"/clusters/([^/]+)/identity-provider-configs"),
        _Registry.list_identity_provider_configs,
    ),
    (
        "POST",
        re.compile(r"/clusters/([^/]+)/identity-provider-configs/describe"),
        _Registry.describe_identity_provider_config,
    ),
]


def _find_route(method: str, path: str) -> tuple[_Route, list[str]] | None:
    for route_method, pattern, handler in _ROUTES:
        match = pattern.fullmatch(path)
        if route_method == method and match:
            return handler, [unquote(g) for g in match.groups()]
    return None


def _json_default(value: object) -> object:
    # Tests may register datetimes; EKS sends timestamps as epoch seconds.
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _HttpServer(LocalHTTPServer):
    def __init__(self, gap: "EksGapServer") -> None:
        super().__init__(_Handler)
        self.gap = gap


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps botocore's pooled connections alive; every response sets Content-Length.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle on, the body waits ~40 ms for the
    # client's delayed ACK, which would swamp the latency this server is meant to model.
    disable_nagle_algorithm = True
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keeps pytest output clean; tests query requests_seen() instead

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self) -> None:
        gap = self.server.gap
        gap._note_arrival()
        if gap.latency_seconds > 0:
            time.sleep(gap.latency_seconds)
        body = self._read_body()
        if body is None:
            return
        target = urlsplit(self.path)
        match = _CREDENTIAL_SCOPE.search(self.headers.get("Authorization", ""))
        region = match.group(1) if match else None
        fault = gap._note_request(self.command, target.path, region)
        if fault is not None and fault.answer is not None:
            self._send_bytes(fault.status, fault.answer, fault.headers)
            return
        if fault is not None:
            self._send_error(ApiError(fault.status, fault.error_type, fault.message), fault.headers)
            return
        route = _find_route(self.command, target.path)
        if route is None:
            self._forward(body, region)
            return
        handler, args = route
        try:
            if region is None:
                raise ApiError(403, "MissingAuthenticationTokenException", "Missing SigV4 scope.")
            query = {k: v[0] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
            result = handler(gap._registry, region, args, query, body)
        except ApiError as err:
            self._send_error(err)
            return
        self._send_json(200, result)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # botocore always sends Content-Length for EKS; refusing beats hanging on a read.
            self.close_connection = True
            self._send_error(ApiError(411, "LengthRequired", "Chunked bodies are not supported."))
            return None
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_error(self, err: ApiError, headers: Mapping[str, str] | None = None) -> None:
        extra = {"x-amzn-ErrorType": err.error_type, **(headers or {})}
        self._send_json(err.status, {"message": err.message}, extra)

    def _send_json(
        self, status: int, payload: Json, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send_bytes(status, json.dumps(payload, default=_json_default).encode(), headers)

    def _send_bytes(
        self, status: int, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        # Headers given by the caller (e.g. a fault's) replace these defaults, never duplicate them.
        default = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        for name, value in {**default, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _forward(self, body: bytes, region: str | None) -> None:
        gap = self.server.gap
        try:
            upstream = gap._upstream.exchange(self.command, self.path, self.headers.items(), body)
        except OSError as err:
            self._send_error(ApiError(502, "BadGateway", f"upstream {gap.upstream_url}: {err}"))
            return
        send_answer(
            self, gap._with_endpoint(self.command, urlsplit(self.path).path, region, upstream)
        )


class EksGapServer(Serving):
    """Serves the EKS APIs moto lacks from a registry and forwards the rest to `upstream_url`.

    `latency_seconds` (settable at any time) delays every request, to model real API latency.
    `page_size` caps every list page, whatever maxResults asks for.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        latency_seconds: float = 0.0,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.upstream_url = upstream_url
        self.latency_seconds = latency_seconds
        self._registry = _Registry(page_size)
        self._upstream = Upstream(upstream_url)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._endpoints: dict[tuple[str, str], tuple[str, str]] = {}
        self._seen: Counter[tuple[str, str]] = Counter()
        self._arrivals: list[float] = []  # time.monotonic() of every request, as it comes in

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("EksGapServer is already started")
        self._serve(_HttpServer(self), "eks-gap")
        return self

    def stop(self) -> None:
        self._shut_down()
        self._upstream.close()

    def add_access_entry(
        self,
        region: str,
        cluster: str,
        entry: Mapping[str, Any],
        policies: Sequence[Json] = (),
    ) -> None:
        """Register an AccessEntry and its AssociatedAccessPolicy list (replaces same ARN)."""
        self._registry.add_access_entry(region, cluster, entry, policies)

    def add_oidc_config(self, region: str, cluster: str, oidc: Mapping[str, Any]) -> None:
        """Register an OidcIdentityProviderConfig; clusterName and status ACTIVE are defaulted."""
        self._registry.add_oidc_config(region, cluster, oidc)

    def add_fault(
        self,
        method: str,
        path_regex: str,
        status: int,
        error_type: str,
        message: str,
        times: int | None = None,
        headers: Mapping[str, str] | None = None,
        region: str | None = None,
    ) -> None:
        """Answer matching requests with an AWS rest-json error, `times` times (None: always).

        `method` may be "*"; `path_regex` must fully match the raw (percent-encoded) path
        without the query string. Faults apply to forwarded requests as well, and the first
        registered fault that matches wins.
        """
        fault = _Fault(
            method=method.upper(),
            path=re.compile(path_regex),
            status=status,
            error_type=error_type,
            message=message,
            remaining=times,
            headers=dict(headers or {}),
            region=region,
        )
        with self._lock:
            self._faults.append(fault)

    def add_malformed_answer(
        self,
        method: str,
        path_regex: str,
        body: Any,
        times: int | None = None,
        region: str | None = None,
    ) -> None:
        """Answer matching requests 200 with `body` (any JSON value), a body of a shape the
        EKS model does not define, as a broken proxy or endpoint might. Matched as add_fault."""
        fault = _Fault(
            method=method.upper(),
            path=re.compile(path_regex),
            status=200,
            error_type="",
            message="",
            remaining=times,
            headers={},
            region=region,
            answer=json.dumps(body).encode(),
        )
        with self._lock:
            self._faults.append(fault)

    def set_cluster_endpoint(self, region: str, cluster: str, url: str, ca_pem: bytes) -> None:
        """Make DescribeCluster report this API server and CA for the cluster (moto invents a
        fake amazonaws.com endpoint that must never be dialled)."""
        with self._lock:
            self._endpoints[region, cluster] = (url, base64.b64encode(ca_pem).decode())

    def _with_endpoint(
        self, method: str, path: str, region: str | None, upstream: Answer
    ) -> Answer:
        match = re.fullmatch(r"/clusters/([^/]+)", path)
        with self._lock:
            endpoint = self._endpoints.get((region, unquote(match.group(1)))) if match else None
        if method != "GET" or endpoint is None or upstream.status != 200:
            return upstream
        document = json.loads(upstream.body)
        document["cluster"]["endpoint"] = endpoint[0]
        document["cluster"]["certificateAuthority"] = {"data": endpoint[1]}
        return dataclasses.replace(upstream, body=json.dumps(document).encode())

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests_seen(self, method: str, path_regex: str) -> int:
        """Requests received (faulted ones included) whose raw path fully matches `path_regex`."""
        pattern = re.compile(path_regex)
        with self._lock:
            seen = list(self._seen.items())
        return sum(
            count
            for (seen_method, path), count in seen
            if method.upper() in ("*", seen_method) and pattern.fullmatch(path)
        )

    def requests_arrived_after(self, moment: float) -> int:
        """Requests that came in after `moment` (time.monotonic(), this process's clock)."""
        with self._lock:
            return sum(1 for arrived in self._arrivals if arrived > moment)

    def _note_arrival(self) -> None:
        with self._lock:
            self._arrivals.append(time.monotonic())

    def _note_request(self, method: str, path: str, region: str | None) -> _Fault | None:
        """Count the request and consume the fault that answers it, if any."""
        with self._lock:
            self._seen[method, path] += 1
            for fault in self._faults:
                if fault.matches(method, path, region) and fault.remaining != 0:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None
