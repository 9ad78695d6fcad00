"""EKS bearer tokens, minted the way aws-iam-authenticator and `aws eks get-token` mint them.

A token is a presigned STS GetCallerIdentity URL with the cluster name signed in as the
`x-k8s-aws-id` header, base64url-encoded without padding behind `k8s-aws-v1.`. The API server
replays the URL against STS to learn who signed it. Tokens live only in memory.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mutguard import clock

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the format marker, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
URL_EXPIRES_SECONDS = 60
# The authenticator accepts a token for 15 minutes after signing; renew well before that.
TOKEN_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: datetime

    def __repr__(self) -> str:  # never print the token itself
        return f"Token(expires_at={self.expires_at.isoformat()})"


class EksTokenSource:
    """Mints and renews the bearer token for one cluster from one boto3 session."""

    def __init__(self, session: Any, cluster_name: str, region: str) -> None:
        self._session = session
        self._cluster_name = cluster_name
        self._region = region
        self._token: Token | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or clock.now() >= self._token.expires_at:
                self._token = self._mint()
            return self._token.value

    def renew(self) -> None:
        with self._lock:
            self._token = None

    def _mint(self) -> Token:
        sts = self._session.client("sts", region_name=self._region)

        def sign_cluster_name(request: Any, **_: Any) -> None:
            request.headers[CLUSTER_ID_HEADER] = self._cluster_name

        sts.meta.events.register("before-sign.sts.GetCallerIdentity", sign_cluster_name)
        url = sts.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=URL_EXPIRES_SECONDS, HttpMethod="GET"
        )
        encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        return Token(TOKEN_PREFIX + encoded, clock.now() + TOKEN_LIFETIME)
