"""Live GKE collection: every cluster of every project, read-only, with the REST transport.

One `projects.locations.clusters.list` call per project (location `-`: every zone and region)
returns the full Cluster resources, so projects are read in parallel by a bounded thread pool,
each thread with its own ClusterManagerClient. Without --projects, the projects are those the
credential can see (`projects.search`). A project that cannot be listed becomes a ScanError
naming it; the other projects are still read. Each cluster's RBAC and workloads are then read
through its API server, in the same pool, with the scan's own Google access token (gke_token)
and the cluster CA from `masterAuth.clusterCaCertificate`.

cluster.json is each Cluster converted back to the camelCase JSON gcloud prints (enum names,
int64 as strings, unset fields omitted), minus masterAuth.password and masterAuth.clientKey:
secrets never reach a snapshot. Fields newer than the installed google-cloud-container are
dropped by the SDK when it parses the response, so a live snapshot can hold fewer fields than
`gcloud container clusters describe` would; mutguard reads none of those.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import google.auth
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as retries
from google.api_core.gapic_v1.client_info import ClientInfo
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials
from google.cloud import container_v1
from google.protobuf import json_format

from mutguard import __version__
from mutguard.providers import in_cluster
from mutguard.providers.gke_token import CLOUD_PLATFORM_SCOPE, GkeTokenSource
from mutguard.providers.tasks import Deadline, Item, Task, run_tasks
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider, ScanError, selected

# masterAuth fields that are credentials: present only for callers allowed
# container.clusters.getCredentials, never kept.
SECRET_FIELDS = ("password", "clientKey")
CALL_TIMEOUT_SECONDS = 30.0
CLIENT_INFO = ClientInfo(user_agent=f"mutguard/{__version__}")
# The REST transport lets the requests library's own errors (a refused connection) through.
GOOGLE_ERRORS = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.exceptions.RequestException,
)
_RETRYABLE = retries.if_exception_type(
    requests.exceptions.ConnectionError,
    api_exceptions.TooManyRequests,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcpOptions:
    """`credentials` default to Application Default Credentials (cloud-platform scope). The two
    client_options reach the APIs through another endpoint, e.g. a Private Service Connect
    endpoint for Google APIs ({"api_endpoint": "container-ENDPOINT.p.googleapis.com"})."""

    projects: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()  # only clusters in these regions/zones (default: all)
    clusters: tuple[str, ...] = ()  # only these cluster names (default: all)
    concurrency: int = 16
    credentials: Credentials | None = None
    container_client_options: Mapping[str, Any] | None = None
    resource_manager_client_options: Mapping[str, Any] | None = None
    retry_timeout: float = 60.0
    in_cluster: bool = True  # read RBAC and workloads through the API server too
    project_timeout: float = 60.0  # seconds the project's clusters.list may take (tasks.Deadline)


def gcp_error(exc: Exception, action: str) -> str:
    """A one-line reason naming the API call; Google error messages carry no secrets."""
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        error = _error_body(exc)
        status = error.get("status") or type(exc).__name__
        return f"{action}: {exc.code} {status}: {error.get('message') or exc.message}"
    return f"{action}: {exc}"


def _error_body(exc: api_exceptions.GoogleAPICallError) -> dict[str, Any]:
    # The exception's own message starts with the request URL; the body says only why.
    try:
        error = exc.response.json()["error"]
    except (AttributeError, ValueError, KeyError, TypeError):
        return {}
    return error if isinstance(error, dict) else {}


def cluster_document(cluster: container_v1.Cluster) -> dict[str, Any]:
    """The Cluster as `gcloud container clusters describe --format=json` prints it, no secrets."""
    document = json_format.MessageToDict(type(cluster).pb(cluster))
    master_auth = document.get("masterAuth")
    if isinstance(master_auth, dict):
        for field in SECRET_FIELDS:
            master_auth.pop(field, None)
    return document


class GkeCollector:
    def __init__(self, options: GcpOptions) -> None:
        self.options = options
        self.retry = retries.Retry(
            predicate=_RETRYABLE,
            initial=1.0,
            maximum=10.0,
            multiplier=2.0,
            timeout=options.retry_timeout,
        )
        self._clients = threading.local()

    def collect(self, on_progress: Callable[[int, int], None] | None = None) -> Iterator[Item]:
        """Yield each cluster (or error) as soon as it is read.

        on_progress(done, known) counts projects, and clusters read inside.
        """
        try:
            credentials = self.options.credentials or _default_credentials()
        except auth_exceptions.DefaultCredentialsError as exc:
            yield ScanError(scope="gke", message=f"google.auth.default: {exc}")
            return
        projects = list(self.options.projects)
        if not projects:
            try:
                projects = self._searchable_projects(credentials)
            except GOOGLE_ERRORS as exc:
                action = "cloudresourcemanager.projects.search"
                yield ScanError(scope="gke:projects", message=gcp_error(exc, action))
                return
        tokens = GkeTokenSource(credentials) if self.options.in_cluster else None
        tasks = [self._project_task(credentials, project, tokens) for project in projects]
        yield from run_tasks(tasks, self.options.concurrency, on_progress)

    def _searchable_projects(self, credentials: Credentials) -> list[str]:
        # Imported here: loading the Resource Manager client (its operations transport loads
        # aiohttp) takes longer than the container client, and a scan naming its projects, as
        # every function's does, never searches.
        from google.cloud import resourcemanager_v3

        client = resourcemanager_v3.ProjectsClient(
            credentials=credentials,
            transport="rest",
            client_options=_client_options(self.options.resource_manager_client_options),
            client_info=CLIENT_INFO,
        )
        pages = client.search_projects(request={}, retry=self.retry, timeout=CALL_TIMEOUT_SECONDS)
        active = resourcemanager_v3.Project.State.ACTIVE
        return sorted(project.project_id for project in pages if project.state == active)

    def _container(self, credentials: Credentials) -> container_v1.ClusterManagerClient:
        # One client per thread: the REST transport's session is not shared across threads.
        client = getattr(self._clients, "container", None)
        if client is None:
            client = container_v1.ClusterManagerClient(
                credentials=credentials,
                transport="rest",
                client_options=_client_options(self.options.container_client_options),
                client_info=CLIENT_INFO,
            )
            self._clients.container = client
        return client

    def _project_task(
        self, credentials: Credentials, project: str, tokens: GkeTokenSource | None
    ) -> Task:
        """The project's clusters.list, bound to a deadline: a trickling answer defeats the
        call's own timeout, which bounds each read of the socket, not the call."""
        scope = f"gke:{project}"

        def late() -> list[Item]:
            seconds = f"{self.options.project_timeout:g}"
            return [ScanError(scope, f"project {project} did not answer within {seconds} s")]

        def run() -> tuple[list[Task], list[Item]]:
            action = f"container.clusters.list {project}"
            try:
                response = self._container(credentials).list_clusters(
                    parent=f"projects/{project}/locations/-",
                    retry=self.retry,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            except GOOGLE_ERRORS as exc:
                return [], [ScanError(scope=scope, message=gcp_error(exc, action))]
            sources = [
                source
                for source in (_source(project, cluster) for cluster in response.clusters)
                if selected(source, self.options.clusters, self.options.locations)
            ]
            log.info("project %s: %d cluster(s)", project, len(sources))
            errors: list[Item] = []
            if response.missing_zones:
                missing = ", ".join(response.missing_zones)
                errors.append(ScanError(scope=scope, message=f"{action}: no answer from {missing}"))
            if tokens is None:
                return [], [*sources, *errors]
            return [_in_cluster_task(source, tokens) for source in sources], errors

        return Deadline(self.options.project_timeout, late).bind(run)


def _in_cluster_task(source: ClusterSource, tokens: GkeTokenSource) -> Task:
    def run() -> tuple[list[Task], list[Item]]:
        read_in_cluster(source, tokens)
        return [], [source]

    return run


def api_server_url(cluster: Mapping[str, Any]) -> str | None:
    """The control plane's IP endpoint, as `gcloud container clusters get-credentials` picks it:
    `endpoint`, or the private endpoint when the public IP endpoint is disabled; None when the
    cluster reports no IP endpoint (not ready yet, or reachable through its DNS endpoint only)."""
    private_config = cluster.get("privateClusterConfig") or {}
    ip = (cluster.get("controlPlaneEndpointsConfig") or {}).get("ipEndpointsConfig") or {}
    if ip.get("enabled") is False:
        return None
    public = ip.get("enablePublicEndpoint", not private_config.get("enablePrivateEndpoint", False))
    address = cluster.get("endpoint")
    if not public:
        address = ip.get("privateEndpoint") or private_config.get("privateEndpoint") or address
    return f"https://{address}" if address else None


def read_in_cluster(source: ClusterSource, tokens: GkeTokenSource) -> None:
    """Add the in-cluster documents, read with the scan's Google access token."""
    cluster = source.documents[CLUSTER_DOC]
    url = api_server_url(cluster)
    ca_data = (cluster.get("masterAuth") or {}).get("clusterCaCertificate")
    if url is None or not ca_data:
        reason = "the cluster reports no IP endpoint or CA (not running, or DNS endpoint only)"
        source.errors.update(dict.fromkeys(in_cluster.IN_CLUSTER_DOCS, reason))
        return
    try:
        ca_pem = base64.b64decode(ca_data, validate=True)
    except (binascii.Error, ValueError):
        reason = "masterAuth.clusterCaCertificate is not base64"
        source.errors.update(dict.fromkeys(in_cluster.IN_CLUSTER_DOCS, reason))
        return
    documents, errors = in_cluster.read(in_cluster.KubeEndpoint(url, ca_pem, tokens))
    source.documents.update(documents)
    source.errors.update(errors)


def _source(project: str, cluster: container_v1.Cluster) -> ClusterSource:
    return ClusterSource(
        Provider.GKE,
        cluster.name,
        cluster.location,
        project,
        documents={CLUSTER_DOC: cluster_document(cluster)},
        origin=f"gcp:{project}:{cluster.location}:{cluster.name}",
    )


def _default_credentials() -> Credentials:
    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return credentials


def _client_options(options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(options) if options else None


def collect(
    options: GcpOptions, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[Item]:
    return GkeCollector(options).collect(on_progress)
