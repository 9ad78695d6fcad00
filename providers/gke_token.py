"""GKE bearer tokens: the scan's own Google access token, as gke-gcloud-auth-plugin sends it.

A GKE API server accepts a Google OAuth 2.0 access token with the cloud-platform scope and
authenticates the request as the Google account or service account it was issued to. The token
comes from the credentials that read the GKE API (Application Default Credentials by default),
is refreshed when it expires or the API server answers 401, and lives only in memory.
"""

from __future__ import annotations

import threading

import requests
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials, with_scopes_if_required
from google.auth.transport.requests import Request

from mutguard.providers.in_cluster import KubeReadError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_ERRORS = (auth_exceptions.GoogleAuthError, requests.exceptions.RequestException)


class GkeTokenSource:
    """The access token of one set of Google credentials, shared by every cluster of a scan."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = with_scopes_if_required(credentials, [CLOUD_PLATFORM_SCOPE])
        self._request = Request()
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if not self._credentials.valid:  # no token yet, or one about to expire
                self._refresh()
            token = self._credentials.token
        if not token:
            raise KubeReadError("the Google credentials hold no access token to send")
        return token

    def renew(self) -> None:
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        try:
            self._credentials.refresh(self._request)
        except REFRESH_ERRORS as exc:
            # The first argument is the reason; the rest may be the token endpoint's whole answer.
            reason = exc.args[0] if exc.args else type(exc).__name__
            raise KubeReadError(f"could not get a Google access token: {reason}") from None
