"""A moto_server subprocess on 127.0.0.1, started and stopped by PID."""

import collections
import http.client
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Self

from .lifecycle import Startable
from .ports import free_port

# moto_server is installed next to the interpreter running the tests; relying on PATH could pick
# up a different moto (or none) than the one in this venv.
MOTO_SERVER = Path(sys.executable).with_name("moto_server")
START_TIMEOUT_SECONDS = 30.0
STDERR_TAIL_LINES = 50


class MotoServer(Startable):
    """One moto_server process for the whole test session; `reset()` wipes its state."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        # werkzeug logs every request to stderr; it must be drained or the pipe fills and moto
        # blocks. Only a tail is kept in memory, for error messages; nothing is written to disk.
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._proc is None:
            raise RuntimeError("MotoServer is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("MotoServer is already started")
        self._port = free_port()
        self._proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self._port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self._proc.stderr is not None
        self._drain = threading.Thread(
            target=self._drain_stderr, args=(self._proc.stderr,), name="moto-stderr", daemon=True
        )
        self._drain.start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def reset(self) -> None:
        """Drop every resource in every account and region (moto's own reset endpoint)."""
        status, body = self._request("POST", "/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"moto reset failed: HTTP {status}: {body[:200]!r}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        # The pipe reaches EOF once the process is gone, which ends the drain thread.
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"moto_server exited with code {self._proc.returncode} before it was ready:\n"
                    + self._stderr_text()
                )
            try:
                status, _ = self._request("GET", "/moto-api/", timeout=2)
            except OSError:
                status = 0  # not listening yet
            if status == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"moto_server did not answer GET /moto-api/ within {START_TIMEOUT_SECONDS:.0f} s:\n"
            + self._stderr_text()
        )

    def _request(self, method: str, path: str, timeout: float = 10) -> tuple[int, bytes]:
        # http.client rather than urllib: urllib would honour HTTP(S)_PROXY from the environment
        # and could send a 127.0.0.1 request to a corporate proxy.
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=timeout)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _drain_stderr(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._stderr_tail.append(line.decode(errors="replace").rstrip())
        stream.close()

    def _stderr_text(self) -> str:
        # Give the drain thread a moment to collect the last lines of a dying process.
        time.sleep(0.2)
        return "\n".join(self._stderr_tail) or "(no stderr output)"
