"""SendMessageBatch entries that SQS fails on its side, which moto_server never does.

botocore speaks SQS's AWS JSON 1.0 protocol: POST / with `X-Amz-Target: AmazonSQS.<Action>`.
This proxy forwards every request to moto_server unchanged (moto does not check signatures),
except that while `fail_entries(n, ...)` is armed, the next n entries of SendMessageBatch
requests are taken out before forwarding and answered in the response's `Failed` list
({"Id", "SenderFault", "Code", "Message"}), as SQS reports an entry it did not store.
botocore reaches it through AWS_ENDPOINT_URL_SQS.
"""

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from .http import LocalHTTPServer, Serving

SEND_MESSAGE_BATCH = "AmazonSQS.SendMessageBatch"
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass
class _EntryFault:
    remaining: int
    code: str
    message: str
    sender_fault: bool


class SqsGapServer(Serving):
    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        self._lock = threading.Lock()
        self._faults: list[_EntryFault] = []
        self.batch_calls = 0

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SqsGapServer is not started")
        return f"http://127.0.0.1:{self._httpd.port}"

    def start(self) -> Self:
        self._serve(_HttpServer(self), "sqs-gap")
        return self

    def fail_entries(
        self,
        count: int,
        code: str = "InternalError",
        message: str = "We encountered an internal error. Please try again.",
        sender_fault: bool = False,
    ) -> None:
        """Fail the next `count` SendMessageBatch entries (after earlier armed faults)."""
        with self._lock:
            self._faults.append(_EntryFault(count, code, message, sender_fault))

    def _split(self, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
        """The entries to forward, and the Failed answers for the others."""
        kept, failed = [], []
        with self._lock:
            self.batch_calls += 1
            for entry in entries:
                fault = next((f for f in self._faults if f.remaining > 0), None)
                if fault is None:
                    kept.append(entry)
                    continue
                fault.remaining -= 1
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": fault.sender_fault,
                        "Code": fault.code,
                        "Message": fault.message,
                    }
                )
        return kept, failed


class _HttpServer(LocalHTTPServer):
    def __init__(self, gap: SqsGapServer) -> None:
        super().__init__(_Handler)
        self.gap = gap


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        failed: list[Any] = []
        if self.headers.get("X-Amz-Target") == SEND_MESSAGE_BATCH:
            request = json.loads(body)
            request["Entries"], failed = self.server.gap._split(request["Entries"])
            if not request["Entries"]:  # SQS refuses an empty batch: answer for it
                self._send(200, [("Content-Type", "application/x-amz-json-1.0")], failed, b"{}")
                return
            body = json.dumps(request).encode()
        status, headers, answer = self._forward(body)
        self._send(status, headers, failed, answer)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = urlsplit(self.server.gap.upstream_url)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
            connection.request("POST", self.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _send(
        self, status: int, headers: list[tuple[str, str]], failed: list[Any], body: bytes
    ) -> None:
        if failed and status == 200:
            answer = json.loads(body)
            answer["Failed"] = answer.get("Failed", []) + failed
            body = json.dumps(answer).encode()
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _NOT_FORWARDED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
