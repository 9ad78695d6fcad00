"""What every local HTTP fake shares: a threaded server on 127.0.0.1 and its lifecycle."""

import contextlib
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import SHUT_RDWR, socket
from typing import Any

from .lifecycle import Startable


class LocalHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) that remembers its open client sockets,
    so that stopping it also ends the handlers idling on keep-alive connections."""

    # socketserver's default listen backlog of 5 drops the SYNs of a burst of 16 new clients;
    # the kernel retries them after 1 s and 3 s, which looks exactly like serialised requests.
    request_queue_size = 128
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._sockets_lock = threading.Lock()
        self._sockets: set[socket] = set()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self._sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer (a killed process) is no error of the server's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self._sockets.discard(request)
        super().shutdown_request(request)

    def close_client_sockets(self) -> None:
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(SHUT_RDWR)


class Serving(Startable):
    """A fake that serves a LocalHTTPServer from a thread: its start() calls _serve."""

    _httpd: LocalHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _serve(self, httpd: LocalHTTPServer, name: str) -> None:
        self._httpd = httpd
        # A short poll interval keeps stop() (shutdown waits for one poll) fast in every test.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        self._thread.start()

    def _shut_down(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.close_client_sockets()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        """Where the fake serves, once started."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._httpd.port}"

    def stop(self) -> None:
        self._shut_down()
