"""Azure AKS: parse `az aks show -o json`, the managedCluster resource as the az CLI prints it.

az prints the ARM resource with `properties` flattened into the top level, and names every key
in the camelCase it derives from the SDK's Python attribute names: `enableRbac`,
`authorizedIpRanges`, `tenantId`, where the REST API says `enableRBAC`, `authorizedIPRanges`,
`tenantID`. A raw ARM response (GET .../managedClusters/NAME, nested `properties`, REST names)
is read the same way, so either can be a snapshot's cluster.json. Nulls, absent profiles and
fields from newer API versions are all accepted; values of enums this module does not know are
kept as strings for the checks to name.

The Azure SDK is imported only by the live collector (mutguard.providers.aks_live).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from pydantic.alias_generators import to_camel

from mutguard.cluster import Cluster, EndpointAccess, parse_common
from mutguard.errors import InputError
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider

MANAGED_CLUSTERS = "/providers/microsoft.containerservice/managedclusters/"
# /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/...
RESOURCE_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourcegroups/(?P<group>[^/]+)/", re.IGNORECASE
)
AZURE_POLICY_ADDON = "azurepolicy"


def _either(*names: str) -> Any:
    """A field az prints under the first name and the REST API sends under the others."""
    return Field(default=None, validation_alias=AliasChoices(*names))


class _Raw(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _ApiServerAccess(_Raw):
    authorized_ip_ranges: list[str] | None = _either("authorizedIpRanges", "authorizedIPRanges")
    enable_private_cluster: StrictBool | None = None
    enable_private_cluster_public_fqdn: StrictBool | None = _either(
        "enablePrivateClusterPublicFqdn", "enablePrivateClusterPublicFQDN"
    )
    private_dns_zone: str | None = _either("privateDnsZone", "privateDNSZone")
    enable_vnet_integration: StrictBool | None = None


class _AadProfile(_Raw):
    managed: StrictBool | None = None
    enable_azure_rbac: StrictBool | None = _either("enableAzureRbac", "enableAzureRBAC")
    # az prints the SDK attribute admin_group_object_i_ds camel-cased: adminGroupObjectIDs.
    admin_group_object_ids: list[str] | None = _either("adminGroupObjectIDs", "adminGroupObjectIds")
    tenant_id: str | None = _either("tenantId", "tenantID")


class _Enabled(_Raw):
    enabled: StrictBool | None = None


class _OidcIssuer(_Raw):
    enabled: StrictBool | None = None
    issuer_url: str | None = _either("issuerUrl", "issuerURL")


class _Defender(_Raw):
    security_monitoring: _Enabled | None = None


class _KeyVaultKms(_Raw):
    enabled: StrictBool | None = None
    key_id: str | None = None
    key_vault_network_access: str | None = None


class _SecurityProfile(_Raw):
    defender: _Defender | None = None
    azure_key_vault_kms: _KeyVaultKms | None = None
    workload_identity: _Enabled | None = None
    image_cleaner: _Enabled | None = None


class _NetworkProfile(_Raw):
    network_plugin: str | None = None
    network_policy: str | None = None


class _AutoUpgrade(_Raw):
    upgrade_channel: str | None = None
    node_os_upgrade_channel: str | None = _either("nodeOsUpgradeChannel", "nodeOSUpgradeChannel")


class _Identity(_Raw):
    type: str | None = None


class _ServicePrincipal(_Raw):
    client_id: str | None = None


class _SshKey(_Raw):
    key_data: str | None = None


class _Ssh(_Raw):
    public_keys: list[_SshKey] | None = None


class _LinuxProfile(_Raw):
    admin_username: str | None = None
    ssh: _Ssh | None = None


class _PoolSecurity(_Raw):
    ssh_access: str | None = None


class _AgentPool(_Raw):
    name: str | None = None
    os_type: str | None = None
    security_profile: _PoolSecurity | None = None


class _AksDoc(_Raw):
    id: str
    name: str
    location: str | None = None
    kubernetes_version: str | None = None
    current_kubernetes_version: str | None = None
    api_server_access_profile: _ApiServerAccess | None = None
    aad_profile: _AadProfile | None = None
    disable_local_accounts: StrictBool | None = None
    enable_rbac: StrictBool | None = _either("enableRbac", "enableRBAC")
    oidc_issuer_profile: _OidcIssuer | None = None
    security_profile: _SecurityProfile | None = None
    network_profile: _NetworkProfile | None = None
    addon_profiles: dict[str, _Enabled | None] | None = None
    auto_upgrade_profile: _AutoUpgrade | None = None
    identity: _Identity | None = None
    service_principal_profile: _ServicePrincipal | None = None
    linux_profile: _LinuxProfile | None = None
    agent_pool_profiles: list[_AgentPool] | None = None
    support_plan: str | None = None


class NodePoolSsh(BaseModel):
    """One Linux node pool and its `securityProfile.sshAccess` (None when not reported)."""

    model_config = ConfigDict(frozen=True)

    pool: str
    ssh_access: str | None


class AksCluster(Cluster):
    resource_group: str
    private_dns_zone: str | None = None  # private clusters: system, none, or a zone's id
    public_fqdn: bool | None = None  # a private cluster's API name also resolves publicly
    vnet_integration: bool | None = None  # the API server is projected into a cluster subnet
    rbac_enabled: bool | None = None
    local_accounts_disabled: bool | None = None
    entra_id: bool = False  # an aadProfile exists
    entra_id_managed: bool | None = None
    azure_rbac: bool | None = None
    admin_group_ids: list[str] = Field(default_factory=list)
    oidc_issuer: bool | None = None
    workload_identity: bool | None = None
    network_policy: str | None = None
    azure_policy: bool = False  # addonProfiles.azurepolicy.enabled
    defender: bool = False
    kms: bool = False
    kms_network_access: str | None = None
    image_cleaner: bool = False
    upgrade_channel: str | None = None
    node_os_upgrade_channel: str | None = None
    identity_type: str | None = None
    service_principal: str | None = None  # servicePrincipalProfile.clientId
    ssh_keys: int = 0  # public keys in linuxProfile
    node_pools_ssh: list[NodePoolSsh] | None = None
    support_plan: str | None = None


def _describe_error(exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    return f"{CLUSTER_DOC}: {problems}"


def _flattened(document: dict[str, Any]) -> dict[str, Any]:
    """The az shape: a raw ARM resource's `properties` merged into its top level."""
    properties = document.get("properties")
    if not isinstance(properties, dict):
        return document
    return {**{k: v for k, v in document.items() if k != "properties"}, **properties}


def _endpoint(access: _ApiServerAccess | None) -> EndpointAccess:
    # A cluster is public unless created private; without authorized ranges anyone may connect
    # (az prints "apiServerAccessProfile": null for such a cluster).
    if access is not None and access.enable_private_cluster:
        return EndpointAccess(public=False, private=True)
    return EndpointAccess(
        public=True, private=False, public_cidrs=(access and access.authorized_ip_ranges) or []
    )


def _addon_enabled(addons: dict[str, _Enabled | None] | None, name: str) -> bool:
    # Add-on keys are the service's names (azurepolicy, omsagent); match them case-insensitively.
    return any(
        key.lower() == name and bool(addon and addon.enabled)
        for key, addon in (addons or {}).items()
    )


def _node_pools_ssh(pools: list[_AgentPool] | None) -> list[NodePoolSsh] | None:
    if pools is None:
        return None
    return [
        NodePoolSsh(
            pool=pool.name or "?",
            ssh_access=pool.security_profile.ssh_access if pool.security_profile else None,
        )
        for pool in pools
        if (pool.os_type or "Linux") == "Linux"
    ]


def parse(source: ClusterSource, observed_at: Any) -> AksCluster:
    """Build an AksCluster from the documents; raises InputError naming what is malformed."""
    doc = _cluster_doc(source)
    ids = RESOURCE_ID.match(doc.id)
    if ids is None:
        raise InputError(f"{CLUSTER_DOC}: id {doc.id!r} is not a managedCluster resource id")

    ssh = doc.linux_profile.ssh if doc.linux_profile else None
    upgrade = doc.auto_upgrade_profile
    errors = dict(source.errors)
    return AksCluster(
        provider=Provider.AKS,
        name=doc.name,
        location=doc.location or source.location,
        account=ids["subscription"],
        arn_or_id=doc.id,
        version=doc.current_kubernetes_version or doc.kubernetes_version,
        observed_at=observed_at,
        resource_group=ids["group"],
        **_api_server_settings(doc.api_server_access_profile),
        rbac_enabled=doc.enable_rbac,
        local_accounts_disabled=doc.disable_local_accounts,
        **_entra_settings(doc.aad_profile),
        oidc_issuer=doc.oidc_issuer_profile.enabled if doc.oidc_issuer_profile else None,
        network_policy=doc.network_profile.network_policy if doc.network_profile else None,
        azure_policy=_addon_enabled(doc.addon_profiles, AZURE_POLICY_ADDON),
        **_security_settings(doc.security_profile or _SecurityProfile()),
        upgrade_channel=upgrade.upgrade_channel if upgrade else None,
        node_os_upgrade_channel=upgrade.node_os_upgrade_channel if upgrade else None,
        identity_type=doc.identity.type if doc.identity else None,
        service_principal=(
            doc.service_principal_profile.client_id if doc.service_principal_profile else None
        ),
        ssh_keys=len(ssh.public_keys or []) if ssh else 0,
        node_pools_ssh=_node_pools_ssh(doc.agent_pool_profiles),
        support_plan=doc.support_plan,
        **parse_common(source, errors),
    )


def _api_server_settings(access: _ApiServerAccess | None) -> dict[str, Any]:
    return {
        "endpoint": _endpoint(access),
        "private_dns_zone": access.private_dns_zone if access else None,
        "public_fqdn": access.enable_private_cluster_public_fqdn if access else None,
        "vnet_integration": access.enable_vnet_integration if access else None,
    }


def _entra_settings(aad: _AadProfile | None) -> dict[str, Any]:
    return {
        "entra_id": aad is not None,
        "entra_id_managed": aad.managed if aad else None,
        "azure_rbac": aad.enable_azure_rbac if aad else None,
        "admin_group_ids": (aad.admin_group_object_ids or []) if aad else [],
    }


def _security_settings(security: _SecurityProfile) -> dict[str, Any]:
    kms = security.azure_key_vault_kms
    monitoring = security.defender.security_monitoring if security.defender else None
    return {
        "workload_identity": (
            security.workload_identity.enabled if security.workload_identity else None
        ),
        "defender": bool(monitoring and monitoring.enabled),
        "kms": bool(kms and kms.enabled),
        "kms_network_access": kms.key_vault_network_access if kms else None,
        "image_cleaner": bool(security.image_cleaner and security.image_cleaner.enabled),
    }


def _cluster_doc(source: ClusterSource) -> _AksDoc:
    document = source.documents.get(CLUSTER_DOC)
    if not looks_like(document):
        raise InputError(
            f"{CLUSTER_DOC}: expected `az aks show -o json` output (a managedCluster with an id)"
        )
    try:
        return _AksDoc.model_validate(_flattened(document))
    except ValidationError as exc:
        raise InputError(_describe_error(exc)) from exc


def looks_like(document: Any) -> bool:
    """Whether a cluster.json is an AKS managedCluster (az output or the raw ARM resource)."""
    resource_id = document.get("id") if isinstance(document, dict) else None
    return isinstance(resource_id, str) and MANAGED_CLUSTERS in resource_id.lower()
