"""A proxy in front of moto_server that holds the first DynamoDB save of cluster states, so that
a test can kill the process making it at exactly that point: after its alerts went out and
before any state of theirs was stored.

Every request is forwarded unchanged (method, path, headers but the hop-by-hop ones, body) and
its answer passed back unchanged, except the first BatchWriteItem that puts a cluster's state
(an item whose key does not start with "#": those are the store's own claims, runs and
suppressions). That one is never forwarded and never answered: its handler waits until the proxy
stops, and `held` is set the moment it arrives.
"""

import json
import threading
from collections.abc import Mapping

from mutguard.publish.stores.dynamodb import KEY

from .forwarding import ForwardingProxy

BATCH_WRITE_TARGET = "DynamoDB_20120810.BatchWriteItem"


def saves_cluster_state(headers: Mapping[str, str], body: bytes) -> bool:
    """Whether a request is a BatchWriteItem putting at least one cluster's state."""
    if headers.get("X-Amz-Target") != BATCH_WRITE_TARGET:
        return False
    requests = json.loads(body).get("RequestItems", {})
    return any(
        not request["PutRequest"]["Item"][KEY]["S"].startswith("#")
        for table_requests in requests.values()
        for request in table_requests
        if "PutRequest" in request
    )


class HoldingProxy(ForwardingProxy):
    """Forwards every request to `upstream_url` (moto_server) but the first save of cluster
    states, which it holds until it stops; `held` is set once it holds it."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._lock = threading.Lock()
        self.held = threading.Event()

    def holds(self, command: str, headers: Mapping[str, str], body: bytes) -> bool:
        """The first save of cluster states, and only that."""
        if not saves_cluster_state(headers, body):
            return False
        with self._lock:
            if self.held.is_set():
                return False
            self.held.set()
            return True
