"""Slack, Microsoft Teams and generic webhook receivers on 127.0.0.1, in their wire formats.

Routes (every secret part of a real URL is a path segment here too, so redaction is tested):
- POST /services/{T}/{B}/{secret}: a Slack incoming webhook. Answers `200 ok`, or
  `400 invalid_blocks` / `400 invalid_payload` as text, like hooks.slack.com.
- POST /api/chat.postMessage: the Slack Web API (slack-sdk's WebClient with base_url=url/api/).
  Needs `Authorization: Bearer <bot token>`; answers JSON {"ok": true, "channel", "ts"} or
  HTTP 200 {"ok": false, "error": "invalid_auth" | "channel_not_found" | "invalid_blocks"}.
- POST /teams/{secret}: a Teams incoming webhook / Workflows trigger taking an Adaptive Card
  message; answers 202, 400 for a payload of the wrong shape, 413 over 28 KB.
- POST /hook/{secret}: a generic webhook receiver; answers 204 and keeps headers and raw body.

Slack payloads are checked against Slack's documented Block Kit limits: at most 50 blocks; a
header's plain_text at most 150 characters; a section's text at most 3000 characters and at
most 10 fields of at most 2000; a context's elements at most 10; known block types only.
`fail(route, status, times, retry_after, body)` makes the next `times` requests to a route
(path prefix) fail, e.g. 429 with Retry-After or 500, before it answers normally again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from .http import LocalHTTPServer, Serving

Json = dict[str, Any]

MAX_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT_OBJECT = 3000
TEAMS_MAX_BYTES = 28 * 1024
BLOCK_TYPES = frozenset({"header", "section", "context", "divider", "actions", "image"})
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
BOT_TOKEN = "xoxb-1111-2222-mutguardtestbottoken"
CHANNEL = "C0MUTGUARD"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Fault:
    route: str
    status: int
    remaining: int
    retry_after: str | None
    body: str


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delivered: bool = False  # the platform would have shown / accepted the message

    @classmethod
    def of_json(cls, status: int, data: Json) -> _Answer:
        body = json.dumps(data).encode()
        return cls(status, body, "application/json; charset=utf-8", delivered=bool(data["ok"]))


def block_problems(blocks: Any) -> list[str]:
    """What breaks Slack's documented Block Kit limits (empty: nothing)."""
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    problems = [f"{len(blocks)} blocks (at most {MAX_BLOCKS})"] if len(blocks) > MAX_BLOCKS else []
    for index, block in enumerate(blocks):
        problems += [f"block {index}: {p}" for p in _one_block_problems(block)]
    return problems


def _one_block_problems(block: Any) -> list[str]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in BLOCK_TYPES:
        return [f"unknown block type {kind!r}"]
    if kind == "header":
        text = block.get("text", {})
        if text.get("type") != "plain_text":
            return ["header text must be plain_text"]
        return _too_long("header text", text.get("text"), MAX_HEADER_TEXT)
    if kind == "section":
        problems = []
        if "text" in block:
            problems += _too_long("section text", block["text"].get("text"), MAX_SECTION_TEXT)
        fields = block.get("fields", [])
        if len(fields) > MAX_FIELDS:
            problems.append(f"{len(fields)} fields (at most {MAX_FIELDS})")
        for item in fields:
            problems += _too_long("field text", item.get("text"), MAX_FIELD_TEXT)
        if "text" not in block and not fields:
            problems.append("a section needs text or fields")
        return problems
    if kind == "context":
        elements = block.get("elements", [])
        problems = []
        if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            problems.append(f"{len(elements)} context elements (1 to {MAX_CONTEXT_ELEMENTS})")
        for element in elements:
            problems += _too_long("context text", element.get("text", ""), MAX_TEXT_OBJECT)
        return problems
    return []


def _too_long(what: str, text: Any, limit: int) -> list[str]:
    if not isinstance(text, str) or not text:
        return [f"{what} is missing"]
    return [f"{what} has {len(text)} characters (at most {limit})"] if len(text) > limit else []


def teams_problems(message: Any) -> list[str]:
    if not isinstance(message, dict) or message.get("type") != "message":
        return ['"type" must be "message"']
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ['"attachments" must be a non-empty list']
    problems = []
    for index, attachment in enumerate(attachments):
        if attachment.get("contentType") != ADAPTIVE_CARD:
            problems.append(f"attachment {index}: contentType must be {ADAPTIVE_CARD}")
        card = attachment.get("content") or {}
        if card.get("type") != "AdaptiveCard" or not isinstance(card.get("version"), str):
            problems.append(f"attachment {index}: content must be an AdaptiveCard with version")
        if not isinstance(card.get("body"), list):
            problems.append(f"attachment {index}: card body must be a list")
    return problems


class ChatServer(Serving):
    """A threaded HTTP server on 127.0.0.1; use as a context manager."""

    def __init__(self, bot_token: str = BOT_TOKEN, channel: str = CHANNEL) -> None:
        self.bot_token = bot_token
        self.channels = {channel}
        self._lock = threading.Lock()
        self._log: list[tuple[Request, bool]] = []  # every request, and whether it delivered
        self._faults: list[_Fault] = []

    def fail(
        self,
        route: str,
        status: int,
        times: int = 1,
        retry_after: str | None = None,
        body: str = "",
    ) -> None:
        """The next `times` requests whose path starts with `route` get `status`."""
        with self._lock:
            self._faults.append(_Fault(route, status, times, retry_after, body))

    def requests(self, route: str = "/") -> list[Request]:
        """Every request whose path starts with `route`, in arrival order."""
        with self._lock:
            return [r for r, _ in self._log if r.path.startswith(route)]

    def delivered(self, route: str = "/") -> list[Request]:
        """The requests to `route` that the platform accepted (not faults, not rejections)."""
        with self._lock:
            return [r for r, ok in self._log if ok and r.path.startswith(route)]

    # --- serving ----------------------------------------------------------------------------

    def handle(self, request: Request) -> _Answer:
        with self._lock:
            fault = self._take_fault(request.path)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            answer = _Answer(fault.status, fault.body.encode(), headers=headers)
        else:
            answer = self._route(request)
        with self._lock:
            self._log.append((request, answer.delivered))
        return answer

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if path.startswith(fault.route) and fault.remaining > 0:
                fault.remaining -= 1
                return fault
        return None

    def _route(self, request: Request) -> _Answer:
        if request.method != "POST":
            return _Answer(405, b"method not allowed")
        if request.path.startswith("/services/"):
            return self._slack_webhook(request)
        if request.path == "/api/chat.postMessage":
            return self._post_message(request)
        if request.path.startswith("/teams/"):
            return self._teams(request)
        if request.path.startswith("/hook/"):
            return _Answer(204, delivered=True)
        return _Answer(404, b"no_service")

    def _slack_webhook(self, request: Request) -> _Answer:
        try:
            payload = request.json()
        except ValueError:
            return _Answer(400, b"invalid_payload")
        if not payload.get("text") and not payload.get("blocks"):
            return _Answer(400, b"no_text")
        if block_problems(payload.get("blocks", [])):
            return _Answer(400, b"invalid_blocks")
        return _Answer(200, b"ok", delivered=True)

    def _post_message(self, request: Request) -> _Answer:
        if request.headers.get("authorization") != f"Bearer {self.bot_token}":
            return _Answer.of_json(200, {"ok": False, "error": "invalid_auth"})
        try:
            payload = request.json()
        except ValueError:
            return _Answer.of_json(200, {"ok": False, "error": "invalid_arguments"})
        if payload.get("channel") not in self.channels:
            return _Answer.of_json(200, {"ok": False, "error": "channel_not_found"})
        if block_problems(payload.get("blocks", [])):
            return _Answer.of_json(200, {"ok": False, "error": "invalid_blocks"})
        return _Answer.of_json(200, {"ok": True, "channel": payload["channel"], "ts": "1.000100"})

    def _teams(self, request: Request) -> _Answer:
        if len(request.body) > TEAMS_MAX_BYTES:
            return _Answer(413, b"message too large")
        try:
            problems = teams_problems(request.json())
        except ValueError:
            problems = ["not JSON"]
        if problems:
            return _Answer(400, "; ".join(problems).encode())
        return _Answer(202, delivered=True)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        self._serve(_HttpServer(self), "chat-server")
        return self


class _HttpServer(LocalHTTPServer):
    def __init__(self, chat: ChatServer) -> None:
        super().__init__(_Handler)
        self.chat = chat


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read ChatServer.requests() instead

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, self.path, headers, body)
        answer = self.server.chat.handle(request)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)
