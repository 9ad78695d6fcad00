"""Azurite (Microsoft's Azure Storage emulator, from npm) as a subprocess on 127.0.0.1.

As TESTING.md describes: `azurite --silent --inMemoryPersistence --disableTelemetry
--skipApiVersionCheck --blobPort 0 --queuePort 0 --tablePort 0`; each service prints
"Azurite <Service> service is successfully listening at http://127.0.0.1:PORT", which is read
for the real ports. `make setup` installs the pinned azurite under .tools/ (Makefile). Nothing
is written to disk; the process is stopped by its PID.
"""

from __future__ import annotations

import collections
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Self

from .lifecycle import Startable

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".tools" / "node_modules" / ".bin" / "azurite"
START_TIMEOUT_SECONDS = 30.0
# The well-known development account every Azurite has (documented by Microsoft; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SERVICES = ("Blob", "Queue", "Table")
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)"
)


class Azurite(Startable):
    """Use as a context manager; `queue_url`, `table_url` and `connection_string()`."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._ports: dict[str, int] = {}
        self._output: collections.deque[str] = collections.deque(maxlen=50)
        self._ready = threading.Event()
        self._drain: threading.Thread | None = None

    @property
    def queue_url(self) -> str:
        return self._url("Queue")

    @property
    def table_url(self) -> str:
        return self._url("Table")

    @property
    def blob_url(self) -> str:
        return self._url("Blob")

    def connection_string(self, account_key: str = ACCOUNT_KEY) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={account_key};"
            f"QueueEndpoint={self.queue_url};TableEndpoint={self.table_url};"
        )

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("Azurite is already started")
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run `make setup` (it installs azurite)")
        command = [
            str(AZURITE),
            "--silent",
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            *(arg for service in SERVICES for arg in (f"--{service.lower()}Host", "127.0.0.1")),
            *(arg for service in SERVICES for arg in (f"--{service.lower()}Port", "0")),
        ]
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._proc.stdout is not None
        self._drain = threading.Thread(
            target=self._read_output, args=(self._proc.stdout,), name="azurite-output", daemon=True
        )
        self._drain.start()
        try:
            ready = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        if not ready:
            self.stop()  # also collects the last lines of output
            output = "\n".join(self._output) or "(no output)"
            raise RuntimeError(f"Azurite did not start listening:\n{output}")
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._drain is not None:
            self._drain.join(timeout=10)  # the pipe ends with the process
            self._drain = None

    def _url(self, service: str) -> str:
        if service not in self._ports:
            raise RuntimeError("Azurite is not started")
        return f"http://127.0.0.1:{self._ports[service]}/{ACCOUNT}"

    def _read_output(self, stream: IO[str]) -> None:
        for line in stream:
            self._output.append(line.rstrip())
            if match := _LISTENING.search(line):
                self._ports[match.group(1)] = int(match.group(2))
                if len(self._ports) == len(SERVICES):
                    self._ready.set()
        stream.close()

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._ready.wait(timeout=0.1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                return False
        return True
