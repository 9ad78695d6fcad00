"""The App Service / Azure Functions managed identity endpoint on 127.0.0.1.

A function app with a managed identity finds its token endpoint in IDENTITY_ENDPOINT and the
secret header value in IDENTITY_HEADER; azure-identity's ManagedIdentityCredential (through
MSAL's App Service source) then asks, per resource
(learn.microsoft.com/azure/app-service/overview-managed-identity, "REST endpoint reference"):

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com
    X-IDENTITY-HEADER: {IDENTITY_HEADER}

and gets 200 {"access_token", "expires_on" (seconds since the epoch, as a string), "resource",
"token_type": "Bearer", "client_id"}. A missing or wrong header, another api-version or a
resource this identity has no token for is 400 with the endpoint's error body
{"statusCode": 400, "message": ...}.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from .http import LocalHTTPServer, Serving

API_VERSION = "2019-08-01"
TOKEN_PATH = "/msi/token"
LIFETIME_SECONDS = 3600
CLIENT_ID = "0b9e7f3a-6c1d-4e2f-8a5b-9c0d1e2f3a4b"  # the system-assigned identity's app id


@dataclass(frozen=True)
class TokenRequest:
    resource: str | None
    api_version: str | None
    header_ok: bool


class ManagedIdentityServer(Serving):
    """Hands out `tokens[resource]`; `requests` lists what was asked, in order."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self.tokens = dict(tokens)
        self.header = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []

    @property
    def endpoint(self) -> str:
        """IDENTITY_ENDPOINT."""
        if self._httpd is None:
            raise RuntimeError("ManagedIdentityServer is not started")
        return f"http://127.0.0.1:{self._httpd.port}{TOKEN_PATH}"

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def start(self) -> Self:
        self._serve(_HttpServer(self), "managed-identity")
        return self

    def answer(self, path: str, query: Mapping[str, str], header: str | None) -> tuple[int, Any]:
        request = TokenRequest(
            query.get("resource"), query.get("api-version"), header == self.header
        )
        with self._lock:
            self._requests.append(request)
        if path != TOKEN_PATH:
            return 404, {"statusCode": 404, "message": f"No route for {path}."}
        if not request.header_ok:
            return 400, {"statusCode": 400, "message": "The X-IDENTITY-HEADER header is invalid."}
        if request.api_version != API_VERSION:
            return 400, {"statusCode": 400, "message": "The api-version is not supported."}
        token = self.tokens.get((request.resource or "").rstrip("/"))
        if token is None:
            message = f"No token for resource {request.resource!r}."
            return 400, {"statusCode": 400, "message": message}
        return 200, {
            "access_token": token,
            "expires_on": str(int(time.time()) + LIFETIME_SECONDS),
            "resource": request.resource,
            "token_type": "Bearer",
            "client_id": CLIENT_ID,
        }


class _HttpServer(LocalHTTPServer):
    def __init__(self, identity: ManagedIdentityServer) -> None:
        super().__init__(_Handler)
        self.identity = identity


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read ManagedIdentityServer.requests instead

    def do_GET(self) -> None:
        target = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        status, body = self.server.identity.answer(
            target.path, query, self.headers.get("X-IDENTITY-HEADER")
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
