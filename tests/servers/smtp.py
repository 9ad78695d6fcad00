"""An SMTP submission server on 127.0.0.1 (aiosmtpd) that requires STARTTLS and AUTH LOGIN.

As TESTING.md describes: `Controller(handler, hostname="127.0.0.1", port=<free port>,
tls_context=..., require_starttls=True, authenticator=..., auth_required=True,
auth_exclude_mechanism=["PLAIN"])`. The certificate comes from tests/servers/tls.py's TestCa, so
clients must trust `ca_pem` explicitly. Accepted messages are kept parsed (`messages`);
`fail_next(code, text)` makes the next DATA answer with that reply, e.g. 451 (temporary).
"""

from __future__ import annotations

import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .lifecycle import Startable
from servers.ports import free_port
from servers.tls import TestCa

USERNAME = "mutguard@example.com"
PASSWORD = "smtp-test-password-0123456789"


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        return self._server.receive(envelope)


class SmtpServer(Startable):
    """Use as a context manager; `port`, `ca_pem` and the accepted `messages` for assertions."""

    def __init__(
        self,
        ca: TestCa,
        username: str = USERNAME,
        password: str = PASSWORD,
        data_size_limit: int | None = None,
    ) -> None:
        """`data_size_limit`: the SIZE announced and enforced (None: aiosmtpd's default)."""
        self.ca_pem = ca.ca_pem
        self._size = {} if data_size_limit is None else {"data_size_limit": data_size_limit}
        self._context = ca.server_context()
        self._credentials = (username.encode(), password.encode())
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self._envelopes: list[tuple[str, list[str]]] = []
        self._failures: list[str] = []
        self.logins: list[tuple[str, bool]] = []
        self.port = 0
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        with self._lock:
            return list(self._envelopes)

    def fail_next(self, reply: str) -> None:
        """The next DATA is answered with `reply`, e.g. "451 4.3.0 Try again later"."""
        with self._lock:
            self._failures.append(reply)

    def receive(self, envelope: Envelope) -> str:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            raw = envelope.original_content or b""
            parsed = message_from_bytes(raw, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            self._messages.append(parsed)
            self._envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 OK"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == self._credentials
        with self._lock:
            login = data.login.decode() if isinstance(data, LoginPassword) else ""
            self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)

    def start(self) -> Self:
        self.port = free_port()
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self._context,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=True,
            auth_exclude_mechanism=["PLAIN"],
            **self._size,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
