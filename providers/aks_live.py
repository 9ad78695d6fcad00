"""Live AKS collection with the Azure SDK: every managed cluster of every subscription, read-only.

One `managedClusters` list per subscription (Microsoft.ContainerService/managedClusters/read)
returns every cluster with all its properties; subscriptions come from --subscriptions or from
what the credential can list (Microsoft.Resources/subscriptions/read). Subscriptions are read
in parallel by a bounded thread pool; the SDK retries throttling (429, honouring Retry-After)
and server errors. A failing subscription becomes a ScanError naming it; a cluster whose
document cannot be written becomes a ClusterSource with the error.

RBAC and workloads are then read through each cluster's API server, in the same pool, with an
Entra ID token for the AKS server application (aks_token). The cluster CA is not part of the
managedCluster resource: for clusters with AKS-managed Entra ID, mutguard calls
listClusterUserCredential (a read-only POST action) with format=exec, whose kubeconfig then holds
the server, the CA and a kubelogin exec configuration, no secret; it keeps the server and the
CA and drops the rest. A cluster without Entra ID would get a kubeconfig carrying a static secret
from that call: mutguard never makes it for such a cluster, and never calls
listClusterAdminCredential at all.

cluster.json is what `az aks show -o json` prints for the cluster, produced from the SDK model the
way az does it: ARM `properties` flattened into the top level, every model attribute under az's
camelCase of its Python name (enable_rbac -> enableRbac, admin_group_object_i_ds ->
adminGroupObjectIDs), map keys and fields this SDK does not know kept as the service sent them,
and `resourceGroup` added beside every resource id.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.serialization import is_generated_model
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerservice import ContainerServiceClient

from mutguard import __version__
from mutguard.providers import in_cluster
from mutguard.providers.aks_token import AksTokenSource
from mutguard.providers.tasks import Deadline, Item, Task, run_tasks
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider, ScanError, selected

log = logging.getLogger(__name__)

LIST_CLUSTERS = "Microsoft.ContainerService/managedClusters/read"
LIST_SUBSCRIPTIONS = "Microsoft.Resources/subscriptions/read"
LIST_USER_CREDENTIAL = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
LOCAL_ACCOUNTS_ONLY = (
    "the cluster is reachable only by static local accounts (no Entra ID integration): mutguard "
    "does not fetch their kubeconfig, which holds a static secret, so RBAC is UNKNOWN"
)
LEGACY_ENTRA = (
    "the cluster uses the legacy Azure AD integration (aadProfile.managed is not true): mutguard "
    "reads inside only clusters with AKS-managed Entra ID, so RBAC is UNKNOWN"
)
NEEDS_KUBE = "in-cluster reads need PyYAML and urllib3: pip install 'mutguard[kube]'"
# Subscriptions in these states cannot be read; the others (Enabled, Warned, PastDue) can.
UNREADABLE_STATES = ("Disabled", "Deleted")
_CAMEL = re.compile(r"(?!^)_([a-zA-Z])")  # az's to_camel_case (azure-cli / knack)
_RESOURCE_GROUP = re.compile(r"^/subscriptions/[^/]+/resourcegroups/([^/]+)", re.IGNORECASE)


@dataclass(frozen=True)
class AzureOptions:
    subscriptions: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()  # only clusters in these Azure regions (default: all)
    clusters: tuple[str, ...] = ()  # only these cluster names (default: all)
    concurrency: int = 16
    max_attempts: int = 8
    # Where and as whom to call ARM: the defaults are the cloud AZURE_SDK_CLOUD_CONF names (the
    # public cloud if unset) and DefaultAzureCredential; tests point them at a local server.
    credential: TokenCredential | None = None
    base_url: str | None = None
    connection_verify: bool | str = True
    in_cluster: bool = True  # read RBAC and workloads through the API server too
    # Seconds the subscription's managedClusters list may take (tasks.Deadline): azure-core waits
    # 300 s per read by default, and retries.
    subscription_timeout: float = 60.0


def azure_error(exc: Exception, action: str) -> str:
    """One line naming the action, the ARM error code and its message (never a token)."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(getattr(exc, "message", None) or exc)
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return f"{action}: {code}: {first_line}" if code else f"{action}: {first_line}"


def _camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def _printed(value: Any, sent: Any) -> Any:
    """`value` (what the SDK made of `sent`, the JSON ARM sent) as az prints it: models by their
    attributes, other values as sent, so that a malformed one stays visible as such."""
    if is_generated_model(value) and isinstance(sent, Mapping):
        # The SDK's attribute -> REST field table, as azure-core's as_attribute_dict reads it.
        fields = value._attr_to_rest_field
        printed = {
            _camel(attr): _printed(getattr(value, attr), sent.get(field._rest_name))
            for attr, field in fields.items()
        }
        known = {field._rest_name for field in fields.values()}
        printed.update({key: item for key, item in sent.items() if key not in known})
        return printed
    if isinstance(value, list) and isinstance(sent, list) and len(value) == len(sent):
        return [_printed(item, raw) for item, raw in zip(value, sent, strict=True)]
    if isinstance(value, dict) and isinstance(sent, Mapping):
        return {key: _printed(value.get(key), raw) for key, raw in sent.items()}
    return sent


def _add_resource_groups(value: Any) -> None:
    """az adds `resourceGroup` to every object that has a resource-group-scoped `id`."""
    if isinstance(value, list):
        for item in value:
            _add_resource_groups(item)
    elif isinstance(value, dict):
        resource_id = value.get("id")
        match = _RESOURCE_GROUP.match(resource_id) if isinstance(resource_id, str) else None
        if match and "resourceGroup" not in value:
            value["resourceGroup"] = match.group(1)
        for item in list(value.values()):
            _add_resource_groups(item)


def az_show_json(cluster: Any) -> dict[str, Any]:
    """`az aks show -o json` for one SDK ManagedCluster."""
    printed = _printed(cluster, cluster)  # a model is also a mapping of the JSON it was read from
    properties = printed.pop("properties", None) or {}
    printed.update(properties)
    _add_resource_groups(printed)
    # The SDK reads some malformed values into objects JSON cannot hold (a list field sent as a
    # string becomes a generator): such a cluster is reported with the error, not written.
    return json.loads(json.dumps(printed))


class AksCollector:
    def __init__(self, options: AzureOptions) -> None:
        self.options = options
        self.credential: TokenCredential = options.credential or DefaultAzureCredential()
        self.tokens = AksTokenSource(self.credential) if options.in_cluster else None

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "connection_verify": self.options.connection_verify,
            "retry_total": max(self.options.max_attempts - 1, 0),
            "user_agent": f"mutguard/{__version__}",
        }
        if self.options.base_url:
            options["base_url"] = self.options.base_url
        return options

    def collect(self, on_progress: Callable[[int, int], None] | None = None) -> Iterator[Item]:
        """Yield each cluster (or error) as soon as it is read; on_progress(done, known) counts
        subscriptions, and clusters read inside."""
        subscriptions = list(self.options.subscriptions)
        if not subscriptions:
            try:
                subscriptions = self._readable_subscriptions()
            except AzureError as exc:
                yield ScanError(
                    scope="aks:subscriptions", message=azure_error(exc, LIST_SUBSCRIPTIONS)
                )
                return
        tasks = [self._subscription_task(subscription) for subscription in subscriptions]
        yield from run_tasks(tasks, self.options.concurrency, on_progress)

    def _readable_subscriptions(self) -> list[str]:
        # Imported here: a scan naming its subscriptions, as every function's does, never lists
        # them, and should not load the client before its first call.
        from azure.mgmt.resource.subscriptions import SubscriptionClient

        with SubscriptionClient(self.credential, **self._client_options()) as client:
            return sorted(
                s.subscription_id
                for s in client.subscriptions.list()
                if s.subscription_id and s.state not in UNREADABLE_STATES
            )

    def _containers(self, subscription: str) -> ContainerServiceClient:
        return ContainerServiceClient(self.credential, subscription, **self._client_options())

    def _subscription_task(self, subscription: str) -> Task:
        def late() -> list[Item]:
            seconds = f"{self.options.subscription_timeout:g}"
            message = f"subscription {subscription} did not answer within {seconds} s"
            return [ScanError(scope=f"aks:{subscription}", message=message)]

        def run() -> tuple[list[Task], list[Item]]:
            try:
                with self._containers(subscription) as client:
                    clusters = list(client.managed_clusters.list())
            except AzureError as exc:
                message = azure_error(exc, LIST_CLUSTERS)
                return [], [ScanError(scope=f"aks:{subscription}", message=message)]
            sources = [
                source
                for source in (_source(subscription, cluster) for cluster in clusters)
                if selected(source, self.options.clusters, self.options.locations)
            ]
            log.info("subscription %s: %d cluster(s)", subscription, len(sources))
            if self.tokens is None:
                return [], list(sources)
            return [self._in_cluster_task(subscription, source) for source in sources], []

        return Deadline(self.options.subscription_timeout, late).bind(run)

    def _in_cluster_task(self, subscription: str, source: ClusterSource) -> Task:
        def run() -> tuple[list[Task], list[Item]]:
            if self.tokens is not None and CLUSTER_DOC in source.documents:
                with self._containers(subscription) as client:
                    read_in_cluster(source, client, self.tokens)
            return [], [source]

        return run


def read_in_cluster(source: ClusterSource, client: Any, tokens: AksTokenSource) -> None:
    """Add the in-cluster documents of an Entra ID cluster, read with an Entra ID token; for any
    other cluster, say why they are not read without asking for a credential."""
    cluster = source.documents[CLUSTER_DOC]
    entra = cluster.get("aadProfile")
    if not isinstance(entra, Mapping) or entra.get("managed") is not True:
        _not_read(source, LOCAL_ACCOUNTS_ONLY if not entra else LEGACY_ENTRA)
        return
    if importlib.util.find_spec("yaml") is None:  # the kubeconfig is YAML (mutguard[kube])
        _not_read(source, NEEDS_KUBE)
        return
    group = _RESOURCE_GROUP.match(str(cluster.get("id") or ""))
    try:
        # format=exec: the kubeconfig runs kubelogin instead of embedding any token.
        credentials = client.managed_clusters.list_cluster_user_credentials(
            group.group(1) if group else "", source.name, format="exec"
        )
        url, ca_pem = kubeconfig_endpoint(credentials)
    except AzureError as exc:
        _not_read(source, azure_error(exc, LIST_USER_CREDENTIAL))
        return
    except ValueError as exc:
        _not_read(source, f"{LIST_USER_CREDENTIAL}: {exc}")
        return
    documents, errors = in_cluster.read(in_cluster.KubeEndpoint(url, ca_pem, tokens))
    source.documents.update(documents)
    source.errors.update(errors)


def kubeconfig_endpoint(credentials: Any) -> tuple[str, bytes]:
    """The API server URL and CA (PEM) of the first cluster in a CredentialResults kubeconfig;
    everything else in it is dropped unread. Raises ValueError saying what is missing."""
    import yaml

    kubeconfigs = [k for k in credentials.kubeconfigs or [] if k.value]
    if not kubeconfigs:
        raise ValueError("the answer holds no kubeconfig")
    try:
        config = yaml.safe_load(kubeconfigs[0].value)
    except yaml.YAMLError:
        raise ValueError("the kubeconfig is not YAML") from None
    clusters = config.get("clusters") if isinstance(config, dict) else None
    entry = clusters[0].get("cluster") if clusters and isinstance(clusters[0], dict) else None
    server = entry.get("server") if isinstance(entry, dict) else None
    ca_data = entry.get("certificate-authority-data") if isinstance(entry, dict) else None
    if not server or not ca_data:
        raise ValueError("the kubeconfig names no server or certificate-authority-data")
    try:
        return str(server), base64.b64decode(ca_data, validate=True)
    except (binascii.Error, TypeError):
        raise ValueError("the kubeconfig's certificate-authority-data is not base64") from None


def _not_read(source: ClusterSource, reason: str) -> None:
    source.errors.update(dict.fromkeys(in_cluster.IN_CLUSTER_DOCS, reason))


def _source(subscription: str, cluster: Any) -> ClusterSource:
    name = cluster.name or cluster.id or "?"
    group = _RESOURCE_GROUP.match(cluster.id or "")
    source = ClusterSource(
        Provider.AKS,
        name,
        cluster.location or "",
        subscription,
        origin=f"azure:{subscription}:{group.group(1) if group else ''}:{name}",
    )
    try:
        source.documents[CLUSTER_DOC] = az_show_json(cluster)
    except (TypeError, ValueError, AttributeError) as exc:
        # A value this SDK version cannot read back: report the cluster, not the whole scan.
        source.errors[CLUSTER_DOC] = f"{name}: the SDK could not read the cluster: {exc}"
    return source


def collect(
    options: AzureOptions, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[Item]:
    return AksCollector(options).collect(on_progress)
