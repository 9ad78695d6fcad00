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

from dataclasses import dataclass

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import (
    AccessSecretVersionRequest,
    AccessSecretVersionResponse,
    SecretPayload,
)

from .grpc_serving import GrpcServing

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


@dataclass
class Version:
    data: bytes
    state: str = "ENABLED"  # ENABLED, DISABLED or DESTROYED


class SecretManagerServer(GrpcServing):
    """Use as a context manager; `endpoint` goes into MUTGUARD_GCP_SECRETMANAGER_ENDPOINT."""

    SERVICE = SERVICE

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, list[Version]] = {}
        self._denied: set[str] = set()
        self._corrupt = 0
        self._requests: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://{self._address()}"

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

    def corrupt(self, times: int = 1) -> None:
        """The next `times` answers carry a CRC32C that does not match their data."""
        with self._lock:
            self._corrupt += times

    @property
    def requests(self) -> list[str]:
        """The version name of every AccessSecretVersion call, in arrival order."""
        with self._lock:
            return list(self._requests)

    def _methods(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                self._access,
                request_deserializer=AccessSecretVersionRequest.deserialize,
                response_serializer=AccessSecretVersionResponse.serialize,
            )
        }

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


def _number(version_id: str) -> int:
    return int(version_id) if version_id.isdigit() else 0
