"""In-cluster reads over HTTPS with the API server's own wire format, in memory, read-only.

The API server's CA comes from the cloud API or the kubeconfig and TLS verification is always
on; the bearer token comes from a TokenSource (minted or read per cluster, renewed when it
expires) and is never logged, stored or put in an error message. Each snapshot document is a
`kubectl get ... -o json` List, so a live read and `kubectl` output scan alike. A document that
cannot be read (403, 401, timeout, an endpoint not reachable from where the scan runs) is
recorded with the reason instead.
"""

from __future__ import annotations

import importlib.util
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from mutguard import __version__
from mutguard.sources import (
    ADMISSION_DOC,
    NAMESPACES_DOC,
    PROBE_DOC,
    RBAC_DOC,
    WORKLOADS_DOC,
    load_json,
)

PAGE_SIZE = 500
CONNECT_TIMEOUT, READ_TIMEOUT = 5, 30
# Bounds on one resource's list, so a server that pages forever cannot hold the scan.
MAX_PAGES = 10_000
MAX_ITEMS = 1_000_000

RBAC_GROUP = "/apis/rbac.authorization.k8s.io/v1"
# document -> the (kind, apiVersion, collection path) it is listed from, as kubectl would.
DOCUMENTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    RBAC_DOC: (
        ("ClusterRole", "rbac.authorization.k8s.io/v1", f"{RBAC_GROUP}/clusterroles"),
        ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", f"{RBAC_GROUP}/clusterrolebindings"),
        ("Role", "rbac.authorization.k8s.io/v1", f"{RBAC_GROUP}/roles"),
        ("RoleBinding", "rbac.authorization.k8s.io/v1", f"{RBAC_GROUP}/rolebindings"),
    ),
    WORKLOADS_DOC: (
        ("Pod", "v1", "/api/v1/pods"),
        ("ServiceAccount", "v1", "/api/v1/serviceaccounts"),
        ("Deployment", "apps/v1", "/apis/apps/v1/deployments"),
        ("ReplicaSet", "apps/v1", "/apis/apps/v1/replicasets"),
        ("DaemonSet", "apps/v1", "/apis/apps/v1/daemonsets"),
        ("StatefulSet", "apps/v1", "/apis/apps/v1/statefulsets"),
        ("Job", "batch/v1", "/apis/batch/v1/jobs"),
        ("CronJob", "batch/v1", "/apis/batch/v1/cronjobs"),
    ),
    NAMESPACES_DOC: (("Namespace", "v1", "/api/v1/namespaces"),),
    ADMISSION_DOC: (
        (
            "ValidatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        ),
        (
            "MutatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        ),
    ),
}


IN_CLUSTER_DOCS = (PROBE_DOC, *DOCUMENTS)


class TokenSource(Protocol):
    """Bearer tokens held in memory: `token()` the current one, `renew()` after a 401.

    `token()` raises KubeReadError, with a reason safe to show, when it cannot get one.
    """

    def token(self) -> str: ...

    def renew(self) -> None: ...


@dataclass(frozen=True)
class KubeEndpoint:
    """Where and how to reach one cluster's API server.

    `ca_pem` None trusts the system's CA store instead of a cluster CA (a kubeconfig without
    one); `tls_server_name` is the name the serving certificate must carry when it is not the
    URL's host (a kubeconfig's tls-server-name). The certificate is verified either way.
    """

    url: str
    ca_pem: bytes | None
    tokens: TokenSource
    tls_server_name: str | None = None


class KubeReadError(Exception):
    """A read that failed; the message is safe to show (it never holds the token)."""


class KubeNotFound(KubeReadError):
    """404: the object does not exist, which is itself an answer."""


class KubeUnreachable(KubeReadError):
    """The endpoint did not answer at all: every other read would fail the same way."""


class _Api:
    """GETs to one API server over HTTPS, the cluster CA held in memory (never in a file).

    Plain urllib3, the transport the `kubernetes` client itself uses: mutguard only lists and
    gets, and the client's generated models (about 85 MB with its dependencies) would be most
    of a function package and of its cold start.
    """

    def __init__(self, endpoint: KubeEndpoint, authenticated: bool) -> None:
        import urllib3

        # Only the cluster CA is trusted; without one (a kubeconfig that names none) the
        # system's CA store is, as kubectl does.
        context = ssl.create_default_context(
            cadata=endpoint.ca_pem.decode("ascii") if endpoint.ca_pem is not None else None
        )
        self._endpoint = endpoint
        self._authenticated = authenticated
        self._pool = urllib3.PoolManager(
            ssl_context=context,
            server_hostname=endpoint.tls_server_name,
            retries=urllib3.Retry(total=1, redirect=0, raise_on_redirect=False),
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        )

    def get(self, path: str, query: Mapping[str, Any]) -> Any:
        """GET a path; returns the decoded JSON or raises KubeReadError with a safe reason."""
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json", "User-Agent": f"mutguard/{__version__}"}
        if self._authenticated:
            headers["Authorization"] = f"Bearer {self._endpoint.tokens.token()}"
        url = self._endpoint.url.rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        try:
            response = self._pool.request("GET", url, headers=headers, preload_content=True)
        except (HTTPError, OSError) as exc:
            raise KubeUnreachable(_network_reason(exc)) from None
        if response.status == 404:
            raise KubeNotFound(f"GET {path}: not found")
        if response.status != 200:
            raise KubeReadError(_status_reason(response.status, response.data, path))
        try:
            return load_json(response.data)
        except ValueError:
            raise KubeReadError(f"GET {path}: the API server answered invalid JSON") from None

    def close(self) -> None:
        self._pool.clear()


def _network_reason(exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(exc).__name__:
        return "TLS verification against the cluster CA failed"
    if "timed out" in text.lower() or "Timeout" in type(exc).__name__:
        return "the API endpoint did not answer in time (a private endpoint unreachable from here?)"
    return "the API endpoint is not reachable from where the scan runs"


def _status_reason(status: int, data: bytes, path: str) -> str:
    try:
        message = json.loads(data).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    if status == 401:
        return "401 Unauthorized: the scan's credential is not accepted by the cluster"
    if status == 403:
        return f"403 Forbidden: {message or 'GET ' + path} (grant mutguard's read-only ClusterRole)"
    return f"GET {path}: HTTP {status} {message}".strip()


def _list(api: _Api, tokens: TokenSource, kind: str, api_version: str, path: str) -> list[dict]:
    items: list[dict] = []
    token = ""
    # Any token seen before means the server is looping; tokens are compared, never shown.
    seen_tokens: set[str] = set()
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": PAGE_SIZE}
        if token:
            query["continue"] = token
        try:
            page = api.get(path, query)
        except KubeReadError as exc:
            if not str(exc).startswith("401"):
                raise
            tokens.renew()  # the token expired mid-scan: mint a new one and try once more
            page = api.get(path, query)
        pages += 1
        page_items, token = _page_contents(page, path)
        # Items of a typed list carry no kind; a kubectl List of several kinds does.
        items.extend({"apiVersion": api_version, "kind": kind, **item} for item in page_items)
        if len(items) > MAX_ITEMS:
            raise KubeReadError(
                f"GET {path}: more than {MAX_ITEMS} items after {pages} pages; "
                "the list is incomplete"
            )
        if not token:
            return items
        if token in seen_tokens:
            raise KubeReadError(
                f"GET {path}: the API server repeated a continue token after {pages} pages; "
                "the list is incomplete"
            )
        if pages >= MAX_PAGES:
            raise KubeReadError(
                f"GET {path}: the API server was still paging after {pages} pages; "
                "the list is incomplete"
            )
        seen_tokens.add(token)


def _page_contents(page: Any, path: str) -> tuple[list[dict], str]:
    """One list page's items and continue token; a body of another shape is a KubeReadError."""
    if not isinstance(page, dict):
        raise KubeReadError(
            f"GET {path}: the API server answered a JSON {_json_type(page)}, not a list"
        )
    items = page.get("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise KubeReadError(
            f"GET {path}: the list's items is a JSON {_json_type(items)}, not an array"
        )
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise KubeReadError(
                f"GET {path}: item {index} of the list is a JSON {_json_type(item)}, not an object"
            )
    metadata = page.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise KubeReadError(
            f"GET {path}: the list's metadata is a JSON {_json_type(metadata)}, not an object"
        )
    token = metadata.get("continue") or ""
    if not isinstance(token, str):
        raise KubeReadError(
            f"GET {path}: the list's metadata.continue is a JSON {_json_type(token)}, not a string"
        )
    return items, token


def _json_type(value: Any) -> str:
    """What a decoded JSON value is, in JSON's own terms."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# The Status body the API server answers for a missing object, kept as that object's document.
NOT_FOUND = {
    "apiVersion": "v1",
    "kind": "Status",
    "status": "Failure",
    "reason": "NotFound",
    "code": 404,
}


def _ca_is_pem(ca_pem: bytes | None) -> bool:
    return ca_pem is None or ca_pem.lstrip().startswith(b"-----BEGIN CERTIFICATE-----")


def read(
    endpoint: KubeEndpoint, objects: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The in-cluster documents of one cluster, and why any could not be read. `objects` adds
    single objects a provider needs (document name -> API path), e.g. EKS's aws-auth."""
    documents: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if importlib.util.find_spec("urllib3") is None:
        reason = "in-cluster reads need the urllib3 package: pip install 'mutguard[kube]'"
        return {}, dict.fromkeys(IN_CLUSTER_DOCS, reason)
    if not _ca_is_pem(endpoint.ca_pem):
        reason = "the cluster CA the cloud API reported is not a PEM certificate; not dialled"
        return {}, dict.fromkeys([*IN_CLUSTER_DOCS, *(objects or {})], reason)
    try:
        documents[PROBE_DOC] = probe(endpoint)
    except KubeUnreachable as exc:
        return {}, dict.fromkeys(IN_CLUSTER_DOCS, str(exc))
    except KubeReadError as exc:
        errors[PROBE_DOC] = str(exc)
    api = _Api(endpoint, authenticated=True)
    try:
        for name, sources in DOCUMENTS.items():
            try:
                items = [
                    item for source in sources for item in _list(api, endpoint.tokens, *source)
                ]
            except KubeReadError as exc:
                errors[name] = str(exc)
                continue
            documents[name] = {"apiVersion": "v1", "kind": "List", "items": items}
        for name, path in (objects or {}).items():
            try:
                answer = api.get(path, {})
            except KubeNotFound:
                documents[name] = NOT_FOUND
            except KubeReadError as exc:
                errors[name] = str(exc)
            else:
                if isinstance(answer, dict):
                    documents[name] = answer
                else:
                    errors[name] = (
                        f"GET {path}: the API server answered a JSON {_json_type(answer)}, "
                        "not an object"
                    )
    finally:
        api.close()
    return documents, errors


def probe(endpoint: KubeEndpoint) -> dict[str, bool]:
    """Did GET /version and GET /api answer without credentials (CA still verified)?"""
    api = _Api(endpoint, authenticated=False)
    try:
        return {
            "anonymous_version": _answers(api, "/version"),
            "anonymous_api": _answers(api, "/api"),
        }
    finally:
        api.close()


def server_version(endpoint: KubeEndpoint) -> dict | None:
    """GET /version (what `kubectl version` shows): with the scan's credential, else without
    one; None when neither is answered or urllib3 is missing."""
    if importlib.util.find_spec("urllib3") is None:
        return None
    for authenticated in (True, False):
        api = _Api(endpoint, authenticated)
        try:
            answer = api.get("/version", {})
        except KubeUnreachable:
            return None
        except KubeReadError:
            continue
        finally:
            api.close()
        return answer if isinstance(answer, dict) else None
    return None


def _answers(api: _Api, path: str) -> bool:
    try:
        api.get(path, {})
    except KubeReadError as exc:
        if str(exc).startswith(("401", "403")):
            return False
        raise
    return True
