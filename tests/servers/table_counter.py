"""A proxy in front of Azurite's Table service that counts the scheduled-run summaries a store
reads (Azurite keeps no request log).

Every request is forwarded unchanged and its answer passed back unchanged (forwarding.py). Of
each answer to an entity query (`GET .../<table>()`, JSON `{"value": [entity, ...]}`),
`summaries_read` counts the entities that carry a `summary` property: a run's finished part,
read with its summary (mutguard/publish/stores/azure_table.py).
"""

import json
import re
import threading
from typing import Any

from .forwarding import ForwardingProxy

_QUERY = re.compile(r"/[^/]+/[^/()]+\(\)")  # /<account>/<table>()


class TableCounter(ForwardingProxy):
    """Forwards to `upstream_url` (Azurite's Table endpoint, http://127.0.0.1:PORT/ACCOUNT);
    `url` is the endpoint to give the client instead."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._lock = threading.Lock()
        self._summaries = 0

    @property
    def summaries_read(self) -> int:
        with self._lock:
            return self._summaries

    def noted(self, command: str, path: str, status: int, body: bytes) -> None:
        if command == "GET" and status == 200 and _QUERY.fullmatch(path):
            entities: list[dict[str, Any]] = json.loads(body).get("value", [])
            with self._lock:
                self._summaries += sum("summary" in entity for entity in entities)
