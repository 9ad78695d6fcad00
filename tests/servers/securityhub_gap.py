"""What Security Hub does that moto_server never does: refuse some findings of a
BatchImportFindings call (FailedFindings), and throttle.

botocore speaks Security Hub's REST-JSON protocol: BatchImportFindings is `POST /findings/import`
with `{"Findings": [...]}`, answered `{"FailedCount", "SuccessCount", "FailedFindings": [{"Id",
"ErrorCode", "ErrorMessage"}]}`. This proxy forwards every request to moto_server unchanged
(moto does not check signatures), except that while armed:
- `fail_findings(n, code, message)`: the next n findings of BatchImportFindings calls are taken
  out before forwarding and answered in FailedFindings, as Security Hub reports a finding it did
  not import;
- `throttle(n)`: the next n BatchImportFindings calls are answered HTTP 429
  LimitExceededException, as Security Hub answers past its rate (10 calls a second).
botocore reaches it through AWS_ENDPOINT_URL_SECURITYHUB.
"""

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .eks_regions import aws_error_answer
from .forwarding import ForwardingProxy
from .relay import Answer

IMPORT_PATH = "/findings/import"


@dataclass
class _FindingFault:
    remaining: int
    code: str
    message: str


class SecurityHubGapServer(ForwardingProxy):
    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._lock = threading.Lock()
        self._faults: list[_FindingFault] = []
        self._throttles = 0
        self.import_calls = 0

    def fail_findings(self, count: int, code: str, message: str) -> None:
        """Refuse the next `count` imported findings (after earlier armed faults)."""
        with self._lock:
            self._faults.append(_FindingFault(count, code, message))

    def throttle(self, calls: int) -> None:
        """Answer the next `calls` BatchImportFindings calls with 429 LimitExceededException."""
        with self._lock:
            self._throttles += calls

    def answer(
        self, command: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        if command != "POST" or urlsplit(target).path != IMPORT_PATH:
            return super().answer(command, target, headers, body)
        if not self._admit():
            return aws_error_answer(429, "LimitExceededException", "Rate exceeded")
        request = json.loads(body)
        request["Findings"], failed = self._split(request["Findings"])
        answer = self.forward(command, target, headers, json.dumps(request).encode())
        if failed and answer.status == 200:
            result = json.loads(answer.body)
            result["FailedCount"] = result.get("FailedCount", 0) + len(failed)
            result["FailedFindings"] = (result.get("FailedFindings") or []) + failed
            answer.body = json.dumps(result).encode()
        return answer

    def _admit(self) -> bool:
        """Count a BatchImportFindings call; False when it is to be throttled."""
        with self._lock:
            self.import_calls += 1
            if self._throttles:
                self._throttles -= 1
                return False
            return True

    def _split(self, findings: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
        """The findings to forward, and the FailedFindings answers for the others."""
        kept, failed = [], []
        with self._lock:
            for finding in findings:
                fault = next((f for f in self._faults if f.remaining > 0), None)
                if fault is None:
                    kept.append(finding)
                    continue
                fault.remaining -= 1
                failed.append(
                    {"Id": finding["Id"], "ErrorCode": fault.code, "ErrorMessage": fault.message}
                )
        return kept, failed
