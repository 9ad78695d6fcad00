"""A proxy in front of the EKS fakes that makes regions behave as real ones do, each on its own:
latency per region, throttling per region, and the access configuration moto drops.

botocore takes one endpoint per service (AWS_ENDPOINT_URL_EKS), not one per region, so the region
is read where the fakes read it, from the SigV4 credential scope.

- `latency(seconds, region=None)`: every request of the region (None: of every region without
  one of its own) waits that long before it is forwarded, as a real round trip would.
- `throttle(region, in_flight)`: a request arriving while `in_flight` of the region's requests are
  already in the proxy is answered 429 ThrottlingException (after the region's latency), as EKS
  answers a caller over its rate; the other regions are not affected.
- `access_config(region, cluster, mode, bootstrap_admin=False)`: DescribeCluster of that cluster
  reports `accessConfig` (moto 5 drops it), and in CONFIG_MAP mode the access-entry APIs answer
  400 InvalidRequestException, as EKS does for a cluster without access entries.
- `remember_reads()`: answer a GET about one cluster a second time from memory (per region, path
  and query), so that moto's CPU time per DescribeCluster (~10 ms on one core) does not stand in
  for the latency being modelled; the request is still counted and delayed. ListClusters is
  always forwarded: its answer depends on the caller's account, which the proxy cannot see.

Every request is counted per region and per (method, path); the proxy keeps when each request
arrived and left, so a test can tell how many of a region's requests were in flight at once.
"""

import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from .http import LocalHTTPServer, Serving
from .relay import Answer, Upstream, send_answer

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/")
_DESCRIBE = re.compile(r"/clusters/([^/]+)")
_ACCESS_ENTRIES = re.compile(r"/clusters/([^/]+)/access-entries(/.*)?")
AUTHENTICATION_MODES = ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP")
# What EKS answers ListAccessEntries and its kin for a cluster in CONFIG_MAP mode.
CONFIG_MAP_REFUSAL = (
    "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to "
    "perform this operation."
)


@dataclass(frozen=True)
class Visit:
    """One request as the proxy saw it."""

    region: str | None
    method: str
    path: str
    arrived: float  # time.monotonic()
    left: float
    throttled: bool


class _HttpServer(LocalHTTPServer):
    def __init__(self, proxy: "RegionProxy") -> None:
        super().__init__(_Handler)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see EksGapServer: Nagle would add ~40 ms to each answer
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self) -> None:
        proxy = self.server.proxy
        arrived = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = _CREDENTIAL_SCOPE.search(self.headers.get("Authorization", ""))
        region = match.group(1) if match else None
        path = urlsplit(self.path).path
        throttled = proxy._enter(region)
        try:
            time.sleep(proxy._latency_of(region))
            if throttled:
                answer = aws_error_answer(429, "ThrottlingException", "Rate exceeded")
            else:
                answer = proxy._answer(self.command, self.path, path, region, self.headers, body)
        finally:
            proxy._leave(region, self.command, path, arrived, throttled)
        send_answer(self, answer)


def aws_error_answer(status: int, error_type: str, message: str) -> Answer:
    """An AWS JSON error, as botocore reads one: the code in x-amzn-ErrorType."""
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", error_type),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    reason = http.client.responses.get(status, "Error")
    return Answer(status, reason, headers, json.dumps({"message": message}).encode())


class RegionProxy(Serving):
    """Forwards EKS requests to `upstream_url` (an EksGapServer), region by region."""

    def __init__(self, upstream_url: str) -> None:
        self._upstream = Upstream(upstream_url)
        self._lock = threading.Lock()
        self._latency: dict[str | None, float] = {None: 0.0}
        self._throttle: dict[str, int] = {}
        self._access: dict[tuple[str, str], dict[str, Any]] = {}
        self._remember = False
        self._remembered: dict[tuple[str | None, str], Answer] = {}
        self._in_flight: Counter[str | None] = Counter()
        self._visits: list[Visit] = []

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("RegionProxy is already started")
        self._serve(_HttpServer(self), "region-proxy")
        return self

    def stop(self) -> None:
        self._shut_down()
        self._upstream.close()

    # --- settings ------------------------------------------------------------------------------

    def latency(self, seconds: float, region: str | None = None) -> None:
        with self._lock:
            self._latency[region] = seconds

    def throttle(self, region: str, in_flight: int) -> None:
        with self._lock:
            self._throttle[region] = in_flight

    def access_config(
        self, region: str, cluster: str, mode: str, bootstrap_admin: bool = False
    ) -> None:
        if mode not in AUTHENTICATION_MODES:
            raise ValueError(f"mode must be one of {AUTHENTICATION_MODES}, got {mode!r}")
        with self._lock:
            self._access[region, cluster] = {
                "authenticationMode": mode,
                "bootstrapClusterCreatorAdminPermissions": bootstrap_admin,
            }

    def remember_reads(self) -> None:
        with self._lock:
            self._remember = True

    # --- what it saw ---------------------------------------------------------------------------

    def visits(self, region: str | None = None) -> list[Visit]:
        """The requests answered so far (of `region`, or of every region), oldest first."""
        with self._lock:
            visits = list(self._visits)
        return [v for v in visits if region is None or v.region == region]

    def requests_seen(self, method: str, path_regex: str, region: str | None = None) -> int:
        pattern = re.compile(path_regex)
        return sum(
            1
            for v in self.visits(region)
            if method.upper() in ("*", v.method) and pattern.fullmatch(v.path)
        )

    def reset_visits(self) -> None:
        with self._lock:
            self._visits.clear()

    @staticmethod
    def most_in_flight(visits: Sequence[Visit]) -> int:
        """How many of `visits` were in the proxy at once, at most."""
        # At equal moments a leaving request is counted out before an arriving one in.
        events = sorted([(v.arrived, 1) for v in visits] + [(v.left, -1) for v in visits])
        most = current = 0
        for _, step in events:
            current += step
            most = max(most, current)
        return most

    # --- the handler's side --------------------------------------------------------------------

    def _enter(self, region: str | None) -> bool:
        """Count the request in; whether it is over the region's limit (and so throttled)."""
        with self._lock:
            limit = self._throttle.get(region) if region is not None else None
            if limit is not None and self._in_flight[region] >= limit:
                return True
            self._in_flight[region] += 1
            return False

    def _leave(
        self, region: str | None, method: str, path: str, arrived: float, throttled: bool
    ) -> None:
        with self._lock:
            if not throttled:
                self._in_flight[region] -= 1
            self._visits.append(Visit(region, method, path, arrived, time.monotonic(), throttled))

    def _latency_of(self, region: str | None) -> float:
        with self._lock:
            return self._latency.get(region, self._latency[None])

    def _answer(
        self,
        method: str,
        target: str,
        path: str,
        region: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        with self._lock:
            access = self._access_of(region, path)
            key = (region, target)
            remembered = self._remembered.get(key) if method == "GET" else None
        config_map = access is not None and access["authenticationMode"] == "CONFIG_MAP"
        if config_map and _ACCESS_ENTRIES.fullmatch(path):
            return aws_error_answer(400, "InvalidRequestException", CONFIG_MAP_REFUSAL)
        if remembered is not None:
            return remembered
        answer = self._upstream.exchange(method, target, headers.items(), body)
        if answer.status == 200 and method == "GET" and _DESCRIBE.fullmatch(path) and access:
            document = json.loads(answer.body)
            document["cluster"]["accessConfig"] = dict(access)
            answer = Answer(
                answer.status, answer.reason, answer.headers, json.dumps(document).encode()
            )
        with self._lock:
            if self._remember and method == "GET" and answer.status == 200 and path != "/clusters":
                self._remembered[key] = answer
        return answer

    def _access_of(self, region: str | None, path: str) -> dict[str, Any] | None:
        """The access configuration set for the cluster `path` is about (under the lock)."""
        match = _ACCESS_ENTRIES.fullmatch(path) or _DESCRIBE.fullmatch(path)
        if region is None or match is None:
            return None
        return self._access.get((region, unquote(match.group(1))))
