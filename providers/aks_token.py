"""AKS bearer tokens: an Entra ID access token for the AKS server application, as kubelogin gets.

Clusters with AKS-managed Entra ID integration accept an Entra ID access token issued for the
"Azure Kubernetes Service AAD Server" application, whose id is the same in every Azure cloud
(Azure/kubelogin docs/book/src/concepts/aks.md). The token comes from the credential that reads
ARM (DefaultAzureCredential by default), is fetched again before it expires or after a 401, and
lives only in memory.
"""

from __future__ import annotations

import threading
import time

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError

from mutguard.providers.in_cluster import KubeReadError

AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
AKS_SERVER_SCOPE = f"{AKS_SERVER_APP}/.default"
# azure-core's bearer-token policy also asks again this long before a token expires.
RENEW_BEFORE_SECONDS = 300


class AksTokenSource:
    """The AKS token of one credential, shared by every cluster of a scan."""

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential
        self._value: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._value is None or time.time() >= self._expires_on - RENEW_BEFORE_SECONDS:
                self._fetch()
            return str(self._value)

    def renew(self) -> None:
        with self._lock:
            self._value = None

    def _fetch(self) -> None:
        try:
            access = self._credential.get_token(AKS_SERVER_SCOPE)
        except AzureError as exc:
            # azure-identity explains each credential it tried on further lines; the first says why.
            lines = str(exc.message).strip().splitlines()
            reason = lines[0] if lines else type(exc).__name__
            raise KubeReadError(f"could not get an Entra ID token for AKS: {reason}") from None
        self._value, self._expires_on = access.token, float(access.expires_on)
