"""SendMessageBatch entries that SQS fails on its side, which moto_server never does.

botocore speaks SQS's AWS JSON 1.0 protocol: POST / with `X-Amz-Target: AmazonSQS.<Action>`.
This proxy forwards every request to moto_server unchanged (moto does not check signatures),
except that while `fail_entries(n, ...)` is armed, the next n entries of SendMessageBatch
requests are taken out before forwarding and answered in the response's `Failed` list
({"Id", "SenderFault", "Code", "Message"}), as SQS reports an entry it did not store.
botocore reaches it through AWS_ENDPOINT_URL_SQS.
"""

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .forwarding import ForwardingProxy
from .relay import Answer

SEND_MESSAGE_BATCH = "AmazonSQS.SendMessageBatch"


@dataclass
class _EntryFault:
    remaining: int
    code: str
    message: str
    sender_fault: bool


class SqsGapServer(ForwardingProxy):
    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._lock = threading.Lock()
        self._faults: list[_EntryFault] = []
        self.batch_calls = 0

    def fail_entries(
        self,
        count: int,
        code: str = "InternalError",
        message: str = "We encountered an internal error. Please try again.",
        sender_fault: bool = False,
    ) -> None:
        """Fail the next `count` SendMessageBatch entries (after earlier armed faults)."""
        with self._lock:
            self._faults.append(_EntryFault(count, code, message, sender_fault))

    def answer(
        self, command: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        if headers.get("X-Amz-Target") != SEND_MESSAGE_BATCH:
            return super().answer(command, target, headers, body)
        request = json.loads(body)
        request["Entries"], failed = self._split(request["Entries"])
        if request["Entries"]:
            answer = self.forward(command, target, headers, json.dumps(request).encode())
        else:  # SQS refuses an empty batch: answer for it
            content_type = ("Content-Type", "application/x-amz-json-1.0")
            answer = Answer(200, "OK", [content_type], b"{}")
        if failed and answer.status == 200:
            result = json.loads(answer.body)
            result["Failed"] = result.get("Failed", []) + failed
            answer.body = json.dumps(result).encode()
        return answer

    def _split(self, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
        """The entries to forward, and the Failed answers for the others."""
        kept, failed = [], []
        with self._lock:
            self.batch_calls += 1
            for entry in entries:
                fault = next((f for f in self._faults if f.remaining > 0), None)
                if fault is None:
                    kept.append(entry)
                    continue
                fault.remaining -= 1
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": fault.sender_fault,
                        "Code": fault.code,
                        "Message": fault.message,
                    }
                )
        return kept, failed
