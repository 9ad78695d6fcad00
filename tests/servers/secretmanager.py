"""GCP Secret Manager on 127.0.0.1: real gRPC,
google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion.

As tests/servers/pubsub.py: a grpc generic handler, (de)serialising with
`AccessSecretVersionRequest.deserialize` / `AccessSecretVersionResponse.serialize` from
google.cloud.secretmanager_v1. The real SecretManagerServiceClient reaches it through
MUTGUARD_GCP_SECRETMANAGER_ENDPOINT=server.endpoint (`http://`: an insecure channel, no
credentials). Only AccessSecretVersion is served; any other method answers UNIMPLEMENTED.

It answers as Secret Manager does: `versions/latest` is the version created last; a secret
with no such version answers NOT_FOUND (`Secret [NAME] not found or has no versions.`), a
version that is not ENABLED answers FAILED_PRECONDITION (`Secret Version [NAME] is in DISABLED
state.`), a secret named in `deny` answers PERMISSION_DENIED (`Permission
'secretmanager.versions.access' denied for resource 'NAME' (or it may not exist).`); otherwise
the payload with its CRC32C, and the version's own name (`.../versions/N`). `fail(code, times)`
makes the next `times` calls fail with that status (e.g. UNAVAILABLE) before it answers again;
`corrupt(times)` sends a wrong CRC32C that many times.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import (
    AccessSecretVersionRequest,
    AccessSecretVersionResponse,
    SecretPayload,
)

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


@dataclass
class Version:
    data: bytes
    state: str = "ENABLED"  # ENABLED, DISABLED or DESTROYED


@dataclass
class _Fault:
    code: grpc.StatusCode
    remaining: int


class SecretManagerServer:
    """Use as a context manager; `endpoint` goes into MUTGUARD_GCP_SECRETMANAGER_ENDPOINT."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, list[Version]] = {}
        self._denied: set[str] = set()
        self._faults: list[_Fault] = []
        self._corrupt = 0
        self._requests: list[str] = []
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("SecretManagerServer is not started")
        return f"http://127.0.0.1:{self.port}"

    def add_version(self, secret: str, data: str | bytes, state: str = "ENABLED") -> str:
        """Add a version to `secret` (projects/P/secrets/S, created if new); its name."""
        payload = data.encode() if isinstance(data, str) else data
        with self._lock:
            versions = self._secrets.setdefault(secret, [])
            versions.append(Version(payload, state))
            return f"{secret}/versions/{len(versions)}"

    def add_secret(self, secret: str) -> None:
        """A secret with no versions yet."""
        with self._lock:
            self._secrets.setdefault(secret, [])

    def deny(self, secret: str) -> None:
        """The caller may not access any version of `secret`."""
        with self._lock:
            self._denied.add(secret)

    def fail(self, code: grpc.StatusCode, times: int = 1) -> None:
        """The next `times` calls fail with `code`."""
        with self._lock:
            self._faults.append(_Fault(code, times))

    def corrupt(self, times: int = 1) -> None:
        """The next `times` answers carry a CRC32C that does not match their data."""
        with self._lock:
            self._corrupt += times

    @property
    def requests(self) -> list[str]:
        """The version name of every AccessSecretVersion call, in arrival order."""
        with self._lock:
            return list(self._requests)

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("SecretManagerServer is already started")
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                    self._access,
                    request_deserializer=AccessSecretVersionRequest.deserialize,
                    response_serializer=AccessSecretVersionResponse.serialize,
                )
            },
        )
        self._executor = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="secrets")
        server = grpc.server(self._executor, handlers=[handler])
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _access(
        self, request: AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> AccessSecretVersionResponse:
        secret, _, version_id = request.name.partition("/versions/")
        with self._lock:
            self._requests.append(request.name)
            fault = self._take_fault()
            denied = secret in self._denied
            versions = list(self._secrets.get(secret, []))
        if fault is not None:
            context.abort(fault, "The service is currently unavailable (test fault).")
        if denied:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission 'secretmanager.versions.access' denied for resource "
                f"'{request.name}' (or it may not exist).",
            )
        number = len(versions) if version_id == "latest" else _number(version_id)
        if not versions or not 1 <= number <= len(versions):
            missing = f"Secret [{secret}] not found or has no versions."
            if versions:
                missing = f"Secret Version [{request.name}] not found."
            context.abort(grpc.StatusCode.NOT_FOUND, missing)
        version = versions[number - 1]
        name = f"{secret}/versions/{number}"
        if version.state != "ENABLED":
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Secret Version [{name}] is in {version.state} state.",
            )
        with self._lock:  # only an answer with data can be garbled
            corrupt = self._corrupt > 0
            self._corrupt -= int(corrupt)
        checksum = google_crc32c.value(version.data) ^ int(corrupt)
        return AccessSecretVersionResponse(
            name=name, payload=SecretPayload(data=version.data, data_crc32c=checksum)
        )

    def _take_fault(self) -> grpc.StatusCode | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        return fault.code


def _number(version_id: str) -> int:
    return int(version_id) if version_id.isdigit() else 0
