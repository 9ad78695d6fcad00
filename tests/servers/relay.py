"""Passing a request on to an upstream server and its answer back, for the fakes that stand in
front of another (moto_server, Azurite): a pool of keep-alive connections to the upstream that
sends the client's own headers, and the answer relayed with the hop-by-hop headers left out.
"""

import http.client
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

# Hop-by-hop headers describe one TCP connection, not the message, so they are never relayed.
# (An answer's Content-Length is set afresh too: the body is sent whole, never chunked.)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
UPSTREAM_TIMEOUT_SECONDS = 120.0


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class Upstream:
    """Keep-alive connections to the upstream, one per request in flight, reused when the
    upstream allows: concurrent clients are not serialised on one shared connection. An
    https:// upstream is reached with the client TLS context given."""

    def __init__(self, url: str, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        scheme = "https" if tls is not None else "http"
        if parts.scheme != scheme or parts.hostname is None:
            raise ValueError(f"upstream must be an {scheme}:// URL, got {url!r}")
        self._host, self._port = parts.hostname, parts.port or (443 if tls else 80)
        self._tls = tls
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._closed = False

    def exchange(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Answer:
        """The upstream's answer to the request, sent with the client's headers but the
        hop-by-hop ones, and a Content-Length of `body` (which a relay may have changed)."""
        headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        conn, reused = self._checkout()
        try:
            try:
                answer, keep = self._send(conn, method, target, headers, body)
            except (ConnectionError, http.client.RemoteDisconnected):
                if not reused:
                    raise
                # The upstream closed an idle keep-alive connection before reading the request,
                # so it is safe to send it once more on a fresh connection.
                conn.close()
                conn = self._connect()
                answer, keep = self._send(conn, method, target, headers, body)
        except BaseException:
            conn.close()
            raise
        if keep:
            self._checkin(conn)
        else:
            conn.close()
        return answer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=UPSTREAM_TIMEOUT_SECONDS, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=UPSTREAM_TIMEOUT_SECONDS)

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    @staticmethod
    def _send(
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> tuple[Answer, bool]:
        # putrequest/putheader rather than request(): request() would add its own Host and
        # Accept-Encoding headers, while the upstream must see the client's (SigV4 signs Host).
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        length_given = False
        for name, value in headers:
            if name.lower() == "content-length":
                length_given = True  # said afresh below
            else:
                conn.putheader(name, value)
        if body or length_given:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        raw = conn.getresponse()
        answer = Answer(raw.status, raw.reason, raw.getheaders(), raw.read())
        return answer, not raw.will_close


def send_answer(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    """Pass an answer back to the caller, hop-by-hop headers left out; the upstream's own Server
    and Date headers go as they are."""
    handler.send_response_only(answer.status, answer.reason)
    length = str(len(answer.body))
    for name, value in answer.headers:
        lowered = name.lower()
        if lowered == "content-length" and handler.command == "HEAD":
            length = value  # a HEAD answer has no body but announces the GET's length
        elif lowered != "content-length" and lowered not in HOP_BY_HOP:
            handler.send_header(name, value)
    handler.send_header("Content-Length", length)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(answer.body)
