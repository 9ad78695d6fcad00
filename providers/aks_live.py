"""Live AKS collection with the Azure SDK: every managed cluster of every subscription, read-only.

One `managedClusters` list per subscription (Microsoft.ContainerService/managedClusters/read)
returns every cluster with all its properties; subscriptions come from --subscriptions or from
what the credential can list (Microsoft.Resources/subscriptions/read). Subscriptions are read
in parallel by a bounded thread pool; the SDK retries throttling (429, honouring Retry-After)
and server errors. A failing subscription becomes a ScanError naming it; a cluster whose
document cannot be written becomes a ClusterSource with the error. No credential is ever asked
for (listClusterAdminCredential, listClusterUserCredential are POST actions mutguard never calls).

cluster.json is what `az aks show -o json` prints for the cluster, produced from the SDK model the
way az does it: ARM `properties` flattened into the top level, every model attribute under az's
camelCase of its Python name (enable_rbac -> enableRbac, admin_group_object_i_ds ->
adminGroupObjectIDs), map keys and fields this SDK does not know kept as the service sent them,
and `resourceGroup` added beside every resource id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.serialization import is_generated_model
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.resource.subscriptions import SubscriptionClient

from mutguard import __version__
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider, ScanError

LIST_CLUSTERS = "Microsoft.ContainerService/managedClusters/read"
LIST_SUBSCRIPTIONS = "Microsoft.Resources/subscriptions/read"
# Subscriptions in these states cannot be read; the others (Enabled, Warned, PastDue) can.
UNREADABLE_STATES = ("Disabled", "Deleted")
_CAMEL = re.compile(r"(?!^)_([a-zA-Z])")  # az's to_camel_case (azure-cli / knack)
_RESOURCE_GROUP = re.compile(r"^/subscriptions/[^/]+/resourcegroups/([^/]+)", re.IGNORECASE)

Item = ClusterSource | ScanError


@dataclass(frozen=True)
class AzureOptions:
    subscriptions: tuple[str, ...] = ()
    concurrency: int = 16
    max_attempts: int = 8
    # Where and as whom to call ARM: the defaults are the cloud AZURE_SDK_CLOUD_CONF names (the
    # public cloud if unset) and DefaultAzureCredential; tests point them at a local server.
    credential: TokenCredential | None = None
    base_url: str | None = None
    connection_verify: bool | str = True


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
        """Yield each cluster (or error) as its subscription is read; on_progress(done, known)."""
        subscriptions = list(self.options.subscriptions)
        if not subscriptions:
            try:
                subscriptions = self._readable_subscriptions()
            except AzureError as exc:
                yield ScanError(
                    scope="aks:subscriptions", message=azure_error(exc, LIST_SUBSCRIPTIONS)
                )
                return
        workers = max(1, min(self.options.concurrency, len(subscriptions)))
        with ThreadPoolExecutor(workers, thread_name_prefix="mutguard") as pool:
            futures = [pool.submit(self._subscription, s) for s in subscriptions]
            for done, future in enumerate(as_completed(futures), start=1):
                if on_progress:
                    on_progress(done, len(futures))
                yield from future.result()

    def _readable_subscriptions(self) -> list[str]:
        with SubscriptionClient(self.credential, **self._client_options()) as client:
            return sorted(
                s.subscription_id
                for s in client.subscriptions.list()
                if s.subscription_id and s.state not in UNREADABLE_STATES
            )

    def _subscription(self, subscription: str) -> list[Item]:
        try:
            with ContainerServiceClient(
                self.credential, subscription, **self._client_options()
            ) as client:
                clusters = list(client.managed_clusters.list())
        except AzureError as exc:
            return [ScanError(scope=f"aks:{subscription}", message=azure_error(exc, LIST_CLUSTERS))]
        return [_source(subscription, cluster) for cluster in clusters]


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
