"""Headless Chromium driven over the Chrome DevTools Protocol, to look at a page as a browser
shows it: one tab, its console and network events kept, screenshots decoded.

Chromium listens on a port of 127.0.0.1 it picks itself (written to DevToolsActivePort in its
profile); the tab is driven through the browser's websocket in flattened session mode.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websocket

# Chromium as root in a container: no sandbox, and nothing of its own that reaches the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Tab:
    """One page target; every event received is kept in `events`, in order."""

    def __init__(self, socket: websocket.WebSocket, session: str) -> None:
        self._socket = socket
        self._session = session
        self._next_id = 1000
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        command["sessionId"] = self._session
        self._socket.send(json.dumps(command))
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while time.monotonic() < deadline:
            message = self._receive(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
        raise TimeoutError(f"{method} was not answered in {COMMAND_TIMEOUT} s")

    def wait_for(self, event: str, since: int, timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        """The first `event` from the `since`-th event received on."""
        seen = since
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.events[seen:]:
                if message["method"] == event:
                    return message["params"]
            seen = len(self.events)
            self._receive(deadline)
        raise TimeoutError(f"no {event} in {timeout} s")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, url: str) -> None:
        since = len(self.events)
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired", since)

    def screenshot(self, scale: float = 1.0) -> bytes:
        """The viewport as PNG, shrunk by `scale`."""
        # A clip is in page coordinates: the viewport is where the page is scrolled to.
        x, y, width, height = self.evaluate("[scrollX, scrollY, innerWidth, innerHeight]")
        clip = {"x": x, "y": y, "width": width, "height": height, "scale": scale}
        result = self.send("Page.captureScreenshot", format="png", clip=clip)
        return base64.b64decode(result["data"])

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def named(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e["method"] == method]

    def _receive(self, deadline: float) -> dict[str, Any]:
        self._socket.settimeout(max(deadline - time.monotonic(), 0.01))
        message = json.loads(self._socket.recv())
        if "method" in message and message.get("sessionId") == self._session:
            self.events.append(message)
        return message


def _devtools_url(profile: Path, process: subprocess.Popen) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        lines = port_file.read_text().split("\n") if port_file.exists() else []
        if len(lines) >= 2 and lines[1]:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise TimeoutError(f"chromium wrote no {port_file} in {START_TIMEOUT} s")


@contextmanager
def open_tab(executable: str, width: int = 1280, height: int = 900) -> Iterator[Tab]:
    """A fresh Chromium with a fresh profile and one blank tab of width x height CSS px, whose
    Page, Runtime, Log and Network events are recorded from the start."""
    # Chromium's helper processes (renderer, GPU, crash handler) outlive the browser process for
    # a moment and may still write to the profile: the whole process group is stopped, and a file
    # written after that is not worth failing a test for.
    with tempfile.TemporaryDirectory(
        prefix="mutguard-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            socket = websocket.create_connection(
                _devtools_url(Path(profile), process), timeout=COMMAND_TIMEOUT
            )
            try:
                yield _attach(socket, width, height)
            finally:
                socket.close()
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):  # then it is killed with its helpers
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # every helper already gone
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _attach(socket: websocket.WebSocket, width: int, height: int) -> Tab:
    socket.send(json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": ""}}))
    target = _answer(socket, 1)["targetId"]
    params = {"targetId": target, "flatten": True}
    socket.send(json.dumps({"id": 2, "method": "Target.attachToTarget", "params": params}))
    tab = Tab(socket, _answer(socket, 2)["sessionId"])
    for domain in ("Page", "Runtime", "Log", "Network"):
        tab.send(f"{domain}.enable")
    tab.send(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    return tab


def _answer(socket: websocket.WebSocket, command: int) -> dict[str, Any]:
    while True:
        message = json.loads(socket.recv())
        if message.get("id") == command:
            if "error" in message:
                raise RuntimeError(str(message["error"]))
            return message["result"]


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced truecolour PNG, as
    Chromium writes its screenshots."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    position, data = 8, b""
    header: tuple[int, ...] = ()
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        body = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            data += body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
    channels = 4 if colour == 6 else 3
    stride = width * channels
    raw = zlib.decompress(data)
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def _unfilter(kind: int, line: bytearray, previous: bytearray, channels: int) -> None:
    if kind == 1:
        for i in range(channels, len(line)):
            line[i] = (line[i] + line[i - channels]) & 0xFF
    elif kind == 2:
        for i in range(len(line)):
            line[i] = (line[i] + previous[i]) & 0xFF
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - channels] if i >= channels else 0
            line[i] = (line[i] + (left + previous[i]) // 2) & 0xFF
    elif kind == 4:
        for i in range(len(line)):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + predictor) & 0xFF
    elif kind != 0:
        raise ValueError(f"unknown PNG filter {kind}")
