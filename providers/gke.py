"""Google Kubernetes Engine: parse `gcloud container clusters describe --format=json` output.

cluster.json is the GKE v1 Cluster resource exactly as gcloud prints it (camelCase, enum names,
int64 as strings); live collection (mutguard.providers.gke_live) writes the same document from
the ClusterManager API, less the two secrets it may carry (masterAuth.password and clientKey),
which mutguard never reads. Field names follow google/container/v1/cluster_service.proto.

Unknown enum values (a newer API, or an enum number the SDK did not know, which the SDK keeps as
an integer) are kept as text for the checks to report as UNKNOWN; unknown fields are ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError

from mutguard.barriers import Barriers, GatedGroup, NodeIdentity
from mutguard.cluster import Cluster, EndpointAccess, parse_common
from mutguard.errors import InputError
from mutguard.mut import ANONYMOUS, AUTHENTICATED, Edge
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_COMPUTE_SA_SUFFIX = "-compute@developer.gserviceaccount.com"
# Attack-graph gates: GKE can refuse new bindings to these groups (rbacBindingConfig).
BINDINGS_TO_AUTHENTICATED = "gke:bindings-to-system:authenticated-allowed"
BINDINGS_TO_UNAUTHENTICATED = "gke:bindings-to-system:unauthenticated-allowed"
_SELF_LINK = re.compile(r"/projects/([^/]+)/(?:locations|zones)/([^/]+)/clusters/([^/?]+)")


def _enum_text(value: Any) -> Any:
    # The SDK writes enum numbers it does not know as integers: keep them, as text, to report.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


EnumValue = Annotated[str, BeforeValidator(_enum_text)]


def _json_name(field: str) -> str:
    """The protobuf JSON name of a field: enable_k8s_tokens_via_dns -> enableK8sTokensViaDns."""
    first, *rest = field.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


class _Raw(BaseModel):
    """The GKE JSON shape: protobuf JSON names, unknown fields from newer API versions ignored."""

    model_config = ConfigDict(
        alias_generator=_json_name, populate_by_name=True, extra="ignore", strict=True
    )


class _CidrBlock(_Raw):
    cidr_block: str
    display_name: str | None = None


class _AuthorizedNetworksConfig(_Raw):
    enabled: StrictBool = False
    cidr_blocks: list[_CidrBlock] = Field(default_factory=list)
    gcp_public_cidrs_access_enabled: StrictBool | None = None
    private_endpoint_enforcement_enabled: StrictBool | None = None


class _IpEndpointsConfig(_Raw):
    enabled: StrictBool | None = None
    enable_public_endpoint: StrictBool | None = None
    authorized_networks_config: _AuthorizedNetworksConfig | None = None


class _DnsEndpointConfig(_Raw):
    endpoint: str | None = None
    allow_external_traffic: StrictBool | None = None
    enable_k8s_tokens_via_dns: StrictBool | None = None
    enable_k8s_certs_via_dns: StrictBool | None = None


class _ControlPlaneEndpointsConfig(_Raw):
    dns_endpoint_config: _DnsEndpointConfig | None = None
    ip_endpoints_config: _IpEndpointsConfig = Field(default_factory=_IpEndpointsConfig)


class _PrivateClusterConfig(_Raw):
    enable_private_nodes: StrictBool = False
    enable_private_endpoint: StrictBool = False


class _NetworkConfig(_Raw):
    datapath_provider: EnumValue | None = None
    default_enable_private_nodes: StrictBool | None = None


class _ClientCertificateConfig(_Raw):
    issue_client_certificate: StrictBool = False


class _MasterAuth(_Raw):
    # password and clientKey are secrets: never read.
    username: str | None = None
    client_certificate: str | None = None
    client_certificate_config: _ClientCertificateConfig = Field(
        default_factory=_ClientCertificateConfig
    )


class _Enabled(_Raw):
    enabled: StrictBool = False


class _RbacBindingConfig(_Raw):
    enable_insecure_binding_system_unauthenticated: StrictBool | None = None
    enable_insecure_binding_system_authenticated: StrictBool | None = None


class _Mode(_Raw):
    mode: EnumValue | None = None


class _WorkloadIdentityConfig(_Raw):
    workload_pool: str | None = None


class _AuthenticatorGroupsConfig(_Raw):
    enabled: StrictBool = False
    security_group: str | None = None


class _DatabaseEncryption(_Raw):
    state: EnumValue | None = None
    key_name: str | None = None


class _BinaryAuthorization(_Raw):
    enabled: StrictBool = False
    evaluation_mode: EnumValue | None = None


class _ReleaseChannel(_Raw):
    channel: EnumValue | None = None


class _ComponentConfig(_Raw):
    enable_components: list[EnumValue] = Field(default_factory=list)


class _LoggingConfig(_Raw):
    component_config: _ComponentConfig = Field(default_factory=_ComponentConfig)


class _NodeConfig(_Raw):
    service_account: str | None = None
    oauth_scopes: list[str] = Field(default_factory=list)
    workload_metadata_config: _Mode = Field(default_factory=_Mode)


class _NodePool(_Raw):
    name: str
    version: str | None = None
    config: _NodeConfig = Field(default_factory=_NodeConfig)


class _GkeClusterDoc(_Raw):
    # Absent blocks read as empty ones, except where "not reported" must stay visible (None).
    name: str
    self_link: str | None = None
    location: str | None = None
    zone: str | None = None
    status: EnumValue | None = None
    current_master_version: str | None = None
    autopilot: _Enabled = Field(default_factory=_Enabled)
    private_cluster_config: _PrivateClusterConfig = Field(default_factory=_PrivateClusterConfig)
    control_plane_endpoints_config: _ControlPlaneEndpointsConfig = Field(
        default_factory=_ControlPlaneEndpointsConfig
    )
    master_authorized_networks_config: _AuthorizedNetworksConfig | None = None
    network_config: _NetworkConfig = Field(default_factory=_NetworkConfig)
    legacy_abac: _Enabled = Field(default_factory=_Enabled)
    master_auth: _MasterAuth = Field(default_factory=_MasterAuth)
    rbac_binding_config: _RbacBindingConfig = Field(default_factory=_RbacBindingConfig)
    anonymous_authentication_config: _Mode = Field(default_factory=_Mode)
    workload_identity_config: _WorkloadIdentityConfig = Field(
        default_factory=_WorkloadIdentityConfig
    )
    identity_service_config: _Enabled = Field(default_factory=_Enabled)
    authenticator_groups_config: _AuthenticatorGroupsConfig = Field(
        default_factory=_AuthenticatorGroupsConfig
    )
    database_encryption: _DatabaseEncryption = Field(default_factory=_DatabaseEncryption)
    network_policy: _Enabled = Field(default_factory=_Enabled)
    binary_authorization: _BinaryAuthorization = Field(default_factory=_BinaryAuthorization)
    shielded_nodes: _Enabled | None = None
    release_channel: _ReleaseChannel = Field(default_factory=_ReleaseChannel)
    security_posture_config: _Mode = Field(default_factory=_Mode)
    logging_service: str | None = None
    logging_config: _LoggingConfig | None = None
    node_pools: list[_NodePool] = Field(default_factory=list)


class AuthorizedNetworks(BaseModel):
    """Master authorized networks: who may reach the control plane's IP endpoints."""

    model_config = ConfigDict(frozen=True)

    enabled: bool
    cidrs: tuple[str, ...]
    gcp_public_cidrs_access: bool | None  # None: not reported
    private_endpoint_enforcement: bool | None


class DnsEndpoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    allow_external_traffic: bool | None
    kubernetes_tokens: bool | None
    kubernetes_certificates: bool | None


class NodePool(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str | None
    metadata_mode: str | None  # workloadMetadataConfig.mode; None when not set
    service_account: str | None  # None or "default": the Compute Engine default account
    oauth_scopes: tuple[str, ...]

    @property
    def identity_node(self) -> str:
        """The attack-graph node of this pool's Google service account."""
        return f"gcp:node-service-account:{self.name}"

    @property
    def identity(self) -> NodeIdentity:
        """The identity root on a node of this pool holds: GKE authorizes Kubernetes requests
        by IAM as well as RBAC, so it reaches admin only through an IAM mistake."""
        return NodeIdentity(
            pool=self.name,
            node=self.identity_node,
            label=self.service_account_label,
            credential_source="the Compute Engine metadata server",
            no_admin_because="one IAM mistake (a broad role for it) is needed, as GKE authorizes "
            "Kubernetes requests by IAM as well as RBAC",
        )

    @property
    def uses_default_service_account(self) -> bool:
        account = self.service_account or "default"
        return account == "default" or account.endswith(DEFAULT_COMPUTE_SA_SUFFIX)

    @property
    def service_account_label(self) -> str:
        if self.uses_default_service_account:
            return "the Compute Engine default service account"
        return str(self.service_account)

    @property
    def has_cloud_platform_scope(self) -> bool:
        return CLOUD_PLATFORM_SCOPE in self.oauth_scopes


class GkeCluster(Cluster):
    status: str | None = None
    autopilot: bool = False
    public_ip_endpoint: bool = True
    authorized_networks: AuthorizedNetworks | None = None
    dns_endpoint: DnsEndpoint | None = None
    private_nodes: bool = False
    legacy_abac: bool = False
    basic_auth_username: str | None = None
    client_certificate_issued: bool = False
    bindings_to_authenticated_allowed: bool | None = None  # None: not reported
    bindings_to_unauthenticated_allowed: bool | None = None
    anonymous_mode: str | None = None
    workload_pool: str | None = None
    identity_service: bool = False
    google_groups_security_group: str | None = None
    database_encryption_state: str | None = None
    database_encryption_key: str | None = None
    network_policy: bool = False
    datapath_provider: str | None = None
    binary_authorization_mode: str | None = None
    binary_authorization_enabled: bool = False
    shielded_nodes: bool | None = None
    release_channel: str | None = None
    security_posture_mode: str | None = None
    logging_service: str | None = None
    logging_components: tuple[str, ...] | None = None
    node_pools: tuple[NodePool, ...] = ()

    def known_nodes(self) -> list[str]:
        """The nodes the workloads document shows pods on."""
        if self.workloads is None:
            return []
        return sorted({node for workload in self.workloads.items for node in workload.nodes})

    def pool_of_node(self, node: str | None) -> NodePool | None:
        """The pool a node belongs to, when that is certain: the only pool, or the only pool
        whose name appears in the node's name (gke-CLUSTER-POOL-HASH-ID, names may be cut)."""
        if len(self.node_pools) == 1:
            return self.node_pools[0]
        if node is None:
            return None
        matches = [pool for pool in self.node_pools if f"-{pool.name}-" in node]
        return matches[0] if len(matches) == 1 else None


def node_credential_edge(source: str, pool: NodePool, who: str) -> Edge:
    """`who` fetches the pool's service-account token from the Compute Engine metadata server."""
    return pool.identity.credential_edge(source, who)


def barriers(cluster: GkeCluster) -> Barriers:
    """GKE's graph before any mistake: any Google account is authenticated; a binding to the
    public groups first needs rbacBindingConfig to allow it (checks add the edge that says it
    does); root on a node holds that node pool's Google service account."""
    identities = {pool.name: pool.identity for pool in cluster.node_pools}
    nodes = []
    for node in cluster.known_nodes():
        pool = cluster.pool_of_node(node)
        if pool is not None:
            nodes.append((node, identities[pool.name]))
    return Barriers(
        open_authentication="any Google account",
        gated_groups=(
            GatedGroup(
                AUTHENTICATED,
                "system:authenticated",
                BINDINGS_TO_AUTHENTICATED,
                "GKE",
                "rbacBindingConfig",
            ),
            GatedGroup(
                ANONYMOUS,
                "system:unauthenticated",
                BINDINGS_TO_UNAUTHENTICATED,
                "GKE",
                "rbacBindingConfig",
            ),
        ),
        node_identities=tuple(identities.values()),
        nodes=tuple(nodes),
    )


def _describe_error(exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    return f"{CLUSTER_DOC}: {problems}"


def _authorized_networks(doc: _GkeClusterDoc) -> AuthorizedNetworks | None:
    # The newer controlPlaneEndpointsConfig copy wins; older clusters report only the top level.
    config = (
        doc.control_plane_endpoints_config.ip_endpoints_config.authorized_networks_config
        or doc.master_authorized_networks_config
    )
    if config is None:
        return None
    return AuthorizedNetworks(
        enabled=config.enabled,
        cidrs=tuple(block.cidr_block for block in config.cidr_blocks),
        gcp_public_cidrs_access=config.gcp_public_cidrs_access_enabled,
        private_endpoint_enforcement=config.private_endpoint_enforcement_enabled,
    )


def _public_ip_endpoint(doc: _GkeClusterDoc) -> bool:
    """Whether the control plane answers on a public IP (the DNS endpoint is judged apart)."""
    ip = doc.control_plane_endpoints_config.ip_endpoints_config
    if ip.enabled is False:
        return False
    if ip.enable_public_endpoint is not None:
        return ip.enable_public_endpoint
    return not doc.private_cluster_config.enable_private_endpoint


def _dns_endpoint(doc: _GkeClusterDoc) -> DnsEndpoint | None:
    dns = doc.control_plane_endpoints_config.dns_endpoint_config
    if dns is None:
        return None
    return DnsEndpoint(
        allow_external_traffic=dns.allow_external_traffic,
        kubernetes_tokens=dns.enable_k8s_tokens_via_dns,
        kubernetes_certificates=dns.enable_k8s_certs_via_dns,
    )


def _node_pool(pool: _NodePool) -> NodePool:
    return NodePool(
        name=pool.name,
        version=pool.version,
        metadata_mode=pool.config.workload_metadata_config.mode,
        service_account=pool.config.service_account,
        oauth_scopes=tuple(pool.config.oauth_scopes),
    )


def _reachable_from(networks: AuthorizedNetworks | None) -> list[str]:
    if networks is None or not networks.enabled:
        return ["0.0.0.0/0"]
    return list(networks.cidrs)


def parse(source: ClusterSource, observed_at: Any) -> GkeCluster:
    """Build a GkeCluster from the documents; raises InputError naming what is malformed."""
    doc = _cluster_doc(source)

    link = _SELF_LINK.search(doc.self_link or "")
    project = link.group(1) if link else source.account
    location = doc.location or doc.zone or (link.group(2) if link else source.location) or ""
    networks = _authorized_networks(doc)
    public = _public_ip_endpoint(doc)
    auth, groups = doc.master_auth, doc.authenticator_groups_config
    bindings = doc.rbac_binding_config
    errors = dict(source.errors)
    return GkeCluster(
        provider=Provider.GKE,
        name=doc.name,
        location=location,
        account=project,
        arn_or_id=f"projects/{project}/locations/{location}/clusters/{doc.name}",
        version=doc.current_master_version,
        observed_at=observed_at,
        endpoint=EndpointAccess(
            public=public,
            private=True,  # every GKE control plane also has an address inside the VPC
            public_cidrs=_reachable_from(networks) if public else [],
        ),
        status=doc.status,
        autopilot=doc.autopilot.enabled,
        public_ip_endpoint=public,
        authorized_networks=networks,
        dns_endpoint=_dns_endpoint(doc),
        private_nodes=doc.private_cluster_config.enable_private_nodes
        or bool(doc.network_config.default_enable_private_nodes),
        legacy_abac=doc.legacy_abac.enabled,
        basic_auth_username=auth.username or None,
        client_certificate_issued=bool(auth.client_certificate)
        or auth.client_certificate_config.issue_client_certificate,
        bindings_to_authenticated_allowed=bindings.enable_insecure_binding_system_authenticated,
        bindings_to_unauthenticated_allowed=bindings.enable_insecure_binding_system_unauthenticated,
        anonymous_mode=doc.anonymous_authentication_config.mode,
        workload_pool=doc.workload_identity_config.workload_pool or None,
        identity_service=doc.identity_service_config.enabled,
        google_groups_security_group=(groups.security_group or None) if groups.enabled else None,
        database_encryption_state=doc.database_encryption.state,
        database_encryption_key=doc.database_encryption.key_name or None,
        network_policy=doc.network_policy.enabled,
        datapath_provider=doc.network_config.datapath_provider,
        binary_authorization_mode=doc.binary_authorization.evaluation_mode,
        binary_authorization_enabled=doc.binary_authorization.enabled,
        shielded_nodes=doc.shielded_nodes.enabled if doc.shielded_nodes else None,
        release_channel=doc.release_channel.channel,
        security_posture_mode=doc.security_posture_config.mode,
        logging_service=doc.logging_service,
        logging_components=tuple(doc.logging_config.component_config.enable_components)
        if doc.logging_config
        else None,
        node_pools=tuple(_node_pool(pool) for pool in doc.node_pools),
        **parse_common(source, errors),
    )


def _cluster_doc(source: ClusterSource) -> _GkeClusterDoc:
    document = source.documents.get(CLUSTER_DOC)
    if not looks_like(document):
        raise InputError(f"{CLUSTER_DOC}: expected `gcloud container clusters describe` output")
    try:
        return _GkeClusterDoc.model_validate(document)
    except ValidationError as exc:
        raise InputError(_describe_error(exc)) from exc


def looks_like(document: Any) -> bool:
    """Whether a cluster.json is a GKE Cluster resource (gcloud describe output)."""
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        return False
    if "container.googleapis.com/" in str(document.get("selfLink", "")):
        return True
    return isinstance(document.get("currentMasterVersion"), str) and (
        "zone" in document or "location" in document
    )
