"""A Google Cloud Pub/Sub publisher endpoint on 127.0.0.1: real gRPC, google.pubsub.v1.Publisher.

As TESTING.md describes: a grpc generic handler for `google.pubsub.v1.Publisher`/`Publish`,
(de)serialising with `PublishRequest.deserialize` / `PublishResponse.serialize` from
google.pubsub_v1, reached by the real PublisherClient through PUBSUB_EMULATOR_HOST (insecure
channel, no credentials). Only Publish is served; any other method answers UNIMPLEMENTED.

It answers as Pub/Sub does: NOT_FOUND for a topic that was not created, INVALID_ARGUMENT for a
request over Pub/Sub's resource limits (10 MB and 1,000 messages per request, 100 attributes per
message, attribute keys of 256 bytes and values of 1,024 bytes, a message with neither data
nor attributes), otherwise one message id per message, in order. `fail(code, times)` makes the
next `times` Publish calls fail with that status (e.g. UNAVAILABLE) before it answers again.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import grpc
from google.pubsub_v1 import PublishRequest, PublishResponse

from .grpc_serving import GrpcServing

SERVICE = "google.pubsub.v1.Publisher"
TOPIC = "projects/mutguard-test/topics/mutguard-alerts"
MAX_REQUEST_BYTES = 10_000_000
MAX_MESSAGES_PER_REQUEST = 1000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1024
# The real client raises its channel limits to send 10 MB requests; gRPC servers accept 4 MiB
# unless told otherwise.
MAX_RECEIVE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Published:
    topic: str
    message_id: str
    data: bytes
    attributes: dict[str, str]


def request_problem(request: PublishRequest) -> str | None:
    """Why Pub/Sub would refuse this request with INVALID_ARGUMENT (None: it would not)."""
    if PublishRequest.pb(request).ByteSize() > MAX_REQUEST_BYTES:
        return f"request larger than {MAX_REQUEST_BYTES} bytes"
    if not 1 <= len(request.messages) <= MAX_MESSAGES_PER_REQUEST:
        return f"{len(request.messages)} messages (1 to {MAX_MESSAGES_PER_REQUEST})"
    for message in request.messages:
        attributes = dict(message.attributes)
        if not message.data and not attributes:
            return "a message needs data or attributes"
        if len(attributes) > MAX_ATTRIBUTES:
            return f"{len(attributes)} attributes (at most {MAX_ATTRIBUTES})"
        for key, value in attributes.items():
            if len(key.encode()) > MAX_ATTRIBUTE_KEY_BYTES:
                return f"attribute key {key[:40]!r} is too long"
            if len(value.encode()) > MAX_ATTRIBUTE_VALUE_BYTES:
                return f"attribute {key!r} has a value that is too long"
    return None


class PubSubServer(GrpcServing):
    """Use as a context manager; `host` goes into PUBSUB_EMULATOR_HOST."""

    SERVICE = SERVICE
    OPTIONS = (("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),)

    def __init__(self, topics: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._topics = set(topics)
        self._published: list[Published] = []
        self._requests: list[PublishRequest] = []
        self._ids = itertools.count(1)

    @property
    def host(self) -> str:
        return self._address()

    def create_topic(self, topic: str) -> None:
        with self._lock:
            self._topics.add(topic)

    @property
    def published(self) -> list[Published]:
        """Every message accepted, in arrival order."""
        with self._lock:
            return list(self._published)

    @property
    def requests(self) -> list[PublishRequest]:
        """Every Publish request received, accepted or not."""
        with self._lock:
            return list(self._requests)

    def _methods(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "Publish": grpc.unary_unary_rpc_method_handler(
                self._publish,
                request_deserializer=PublishRequest.deserialize,
                response_serializer=PublishResponse.serialize,
            )
        }

    def _publish(self, request: PublishRequest, context: grpc.ServicerContext) -> PublishResponse:
        with self._lock:
            self._requests.append(request)
            fault = self._take_fault()
            known = request.topic in self._topics
        if fault is not None:
            context.abort(fault, "the service is unavailable (test fault)")
        if not known:
            missing = f"Resource not found (resource={request.topic})."
            context.abort(grpc.StatusCode.NOT_FOUND, missing)
        if problem := request_problem(request):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        with self._lock:
            accepted = [
                Published(request.topic, str(next(self._ids)), m.data, dict(m.attributes))
                for m in request.messages
            ]
            self._published += accepted
        return PublishResponse(message_ids=[p.message_id for p in accepted])
