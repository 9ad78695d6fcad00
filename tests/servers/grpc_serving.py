"""What every local gRPC fake shares: a server on 127.0.0.1, its lifecycle, injected failures.

A fake names its service (SERVICE) and serves its methods (`_methods()`) through one grpc
generic handler, as TESTING.md describes; `fail(code, times)` makes the next `times` calls answer
that status before the fake answers again.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Self

import grpc

from .lifecycle import Startable


@dataclass
class _Fault:
    code: grpc.StatusCode
    remaining: int


class GrpcServing(Startable):
    SERVICE = ""
    # gRPC server options, e.g. a larger grpc.max_receive_message_length.
    OPTIONS: tuple[tuple[str, Any], ...] = ()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self.port = 0

    def _methods(self) -> dict[str, grpc.RpcMethodHandler]:
        raise NotImplementedError

    def _address(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"127.0.0.1:{self.port}"

    def fail(self, code: grpc.StatusCode, times: int = 1) -> None:
        """The next `times` calls fail with `code`."""
        with self._lock:
            self._faults.append(_Fault(code, times))

    def _take_fault(self) -> grpc.StatusCode | None:
        """The status the current call must fail with, if any; call with the lock held."""
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        return fault.code

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        handler = grpc.method_handlers_generic_handler(self.SERVICE, self._methods())
        self._executor = futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix=type(self).__name__
        )
        server = grpc.server(self._executor, handlers=[handler], options=list(self.OPTIONS))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # stop() cancels in-flight calls; its event is set once the server has shut down.
            server.stop(grace=None).wait()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)  # the server does not own the threads it was given
