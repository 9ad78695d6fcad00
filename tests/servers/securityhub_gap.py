"""What Security Hub does that moto_server never does: refuse some findings of a
BatchImportFindings call (FailedFindings), and throttle.

botocore speaks Security Hub's REST-JSON protocol: BatchImportFindings is `POST /findings/import`
with `{"Findings": [...]}`, answered `{"FailedCount", "SuccessCount", "FailedFindings": [{"Id",
"ErrorCode", "ErrorMessage"}]}`. This proxy forwards every request to moto_server unchanged
(moto does not check signatures), except that while armed:
- `fail_findings(n, code, message)`: the next n findings of BatchImportFindings calls are taken
  out before forwarding and answered in FailedFindings, as Security Hub reports a finding it did
  not import;
- `throttle(n)`: the next n BatchImportFindings calls are answered HTTP 429
  LimitExceededException, as Security Hub answers past its rate (10 calls a second).
botocore reaches it through AWS_ENDPOINT_URL_SECURITYHUB.
"""

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from .http import LocalHTTPServer, Serving

IMPORT_PATH = "/findings/import"
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass
class _FindingFault:
    remaining: int
    code: str
    message: str


class SecurityHubGapServer(Serving):
    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        self._lock = threading.Lock()
        self._faults: list[_FindingFault] = []
        self._throttles = 0
        self.import_calls = 0

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SecurityHubGapServer is not started")
        return f"http://127.0.0.1:{self._httpd.port}"

    def start(self) -> Self:
        self._serve(_HttpServer(self), "securityhub-gap")
        return self

    def fail_findings(self, count: int, code: str, message: str) -> None:
        """Refuse the next `count` imported findings (after earlier armed faults)."""
        with self._lock:
            self._faults.append(_FindingFault(count, code, message))

    def throttle(self, calls: int) -> None:
        """Answer the next `calls` BatchImportFindings calls with 429 LimitExceededException."""
        with self._lock:
            self._throttles += calls

    def _admit(self) -> bool:
        """Count a BatchImportFindings call; False when it is to be throttled."""
        with self._lock:
            self.import_calls += 1
            if self._throttles:
                self._throttles -= 1
                return False
            return True

    def _split(self, findings: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
        """The findings to forward, and the FailedFindings answers for the others."""
        kept, failed = [], []
        with self._lock:
            for finding in findings:
                fault = next((f for f in self._faults if f.remaining > 0), None)
                if fault is None:
                    kept.append(finding)
                    continue
                fault.remaining -= 1
                failed.append(
                    {"Id": finding["Id"], "ErrorCode": fault.code, "ErrorMessage": fault.message}
                )
        return kept, failed


class _HttpServer(LocalHTTPServer):
    def __init__(self, gap: SecurityHubGapServer) -> None:
        super().__init__(_Handler)
        self.gap = gap


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._relay(b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlsplit(self.path).path != IMPORT_PATH:
            self._relay(body)
            return
        if not self.server.gap._admit():
            error = {"Code": "LimitExceededException", "Message": "Rate exceeded"}
            headers = [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "LimitExceededException"),
            ]
            self._send(429, headers, json.dumps(error).encode())
            return
        request = json.loads(body)
        request["Findings"], failed = self.server.gap._split(request["Findings"])
        status, headers, answer = self._forward(json.dumps(request).encode())
        if failed and status == 200:
            result = json.loads(answer)
            result["FailedCount"] = result.get("FailedCount", 0) + len(failed)
            result["FailedFindings"] = (result.get("FailedFindings") or []) + failed
            answer = json.dumps(result).encode()
        self._send(status, headers, answer)

    def _relay(self, body: bytes) -> None:
        self._send(*self._forward(body))

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = urlsplit(self.server.gap.upstream_url)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _NOT_FORWARDED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
