"""Google Kubernetes Engine control-plane and node-pool checks.

What GKE changes in the attack graph (see barriers in providers/gke.py): any Google account
authenticates as system:authenticated, so that group is as public as system:unauthenticated;
rbacBindingConfig can make GKE refuse new bindings to both groups; and a node's Google service
account is one metadata-server request away from code on the node, and a Kubernetes identity
too, since GKE authorizes requests by IAM as well as RBAC.
"""

from __future__ import annotations

from collections.abc import Callable

from mutguard.checks import Outcome, check, failed, passed, setting_check, unknown
from mutguard.checks.common import ANONYMOUS_AUTHENTICATED, open_cidrs, probed_anonymous
from mutguard.cluster import minor_version
from mutguard.models import Area, Maturity, Provider, Remediation, Severity, Status
from mutguard.mut import (
    ADMIN,
    ANONYMOUS,
    API,
    AUTHENTICATED,
    INTERNET,
    NODE_ANY,
    POD,
    SERVICE_ACCOUNTS,
    USER,
    Edge,
    Start,
    StartKind,
    admin_credential,
)
from mutguard.providers.gke import (
    BINDINGS_TO_AUTHENTICATED,
    BINDINGS_TO_UNAUTHENTICATED,
    AuthorizedNetworks,
    GkeCluster,
    NodePool,
    node_credential_edge,
)
from mutguard.rbac import Subject, subject_node

GKE = (Provider.GKE,)
DOCS = "https://cloud.google.com/kubernetes-engine/docs"
API_REFERENCE = f"{DOCS}/reference/rest/v1/projects.locations.clusters"
HARDENING = f"{DOCS}/how-to/hardening-your-cluster"
NETWORK_ISOLATION = f"{DOCS}/concepts/network-isolation"
AUTHORIZED_NETWORKS = f"{DOCS}/how-to/authorized-networks"
RBAC_BEST_PRACTICES = f"{DOCS}/best-practices/rbac"
API_SERVER_AUTH = f"{DOCS}/how-to/api-server-authentication"
WORKLOAD_IDENTITY = f"{DOCS}/how-to/workload-identity"
NODE_SERVICE_ACCOUNTS = f"{DOCS}/how-to/service-accounts"
ACCESS_SCOPES = f"{DOCS}/how-to/access-scopes"
SHIELDED_NODES = f"{DOCS}/how-to/shielded-gke-nodes"
METADATA_CONCEALMENT = f"{DOCS}/how-to/protecting-cluster-metadata"

ANONYMOUS_MODES = ("ENABLED", "LIMITED", "MODE_UNSPECIFIED")
METADATA_MODES = ("GKE_METADATA", "GCE_METADATA", "MODE_UNSPECIFIED")
CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
# The identity of the kubelet credential GKE keeps in each node's kube-env instance metadata; GKE's
# own ClusterRoleBinding kubelet-cluster-admin binds it to ClusterRole system:node.
KUBELET = Subject("User", "kubelet")
ENCRYPTION_OFF = ("DECRYPTED", "UNKNOWN")  # UNKNOWN is the API's name for "not set"
ENCRYPTION_ON = ("ENCRYPTED", "ALL_OBJECTS_ENCRYPTION_ENABLED")
DATAPATHS = ("DATAPATH_PROVIDER_UNSPECIFIED", "LEGACY_DATAPATH", "ADVANCED_DATAPATH")
BINAUTHZ_MODES = ("EVALUATION_MODE_UNSPECIFIED", "DISABLED", "PROJECT_SINGLETON_POLICY_ENFORCE")
POSTURE_ON = ("BASIC", "ENTERPRISE")
CLIENT_USER = "user:client"  # the user GKE's issued client certificate authenticates as


def _update(flags: str) -> str:
    return f"gcloud container clusters update NAME --location LOCATION {flags}"


@check(
    id="gke.endpoint.public_unrestricted",
    title="Control plane IP endpoint is not open to the whole internet",
    severity=Severity.CRITICAL,
    area=Area.NETWORK,
    maturity=Maturity.CRAWL,
    providers=GKE,
    rationale="A public IP endpoint without authorized networks, or with 0.0.0.0/0, a range anyone "
    "can rent into, or Google Cloud public IPs allowed (any Compute Engine VM of any customer), "
    "removes the network barrier. The DNS-based endpoint is not counted here: every request on "
    "it must first pass an IAM check (container.clusters.connect).",
    remediation={
        Provider.GKE: Remediation(
            summary="Restrict the public endpoint to your ranges and shut out Google Cloud "
            "public IPs, or enable the private endpoint.",
            cli=_update(
                "--enable-master-authorized-networks --master-authorized-networks=203.0.113.0/24 "
                "--no-enable-google-cloud-access"
            )
            + "\n"
            + _update("--enable-private-endpoint"),
            terraform="google_container_cluster master_authorized_networks_config { cidr_blocks "
            "{ cidr_block } gcp_public_cidrs_access_enabled = false } or "
            "private_cluster_config.enable_private_endpoint = true",
        )
    },
    references=[AUTHORIZED_NETWORKS, NETWORK_ISOLATION, HARDENING],
)
def endpoint_public_unrestricted(cluster: GkeCluster):
    if not cluster.public_ip_endpoint:
        return passed("the control plane has no public IP endpoint")
    networks = cluster.authorized_networks
    if networks is None or not networks.enabled:
        return failed(
            "the public IP endpoint has no authorized networks: anyone can reach it",
            edges=[_internet_edge("the public IP endpoint accepts every address")],
        )
    open_to_anyone, invalid = open_cidrs(networks.cidrs)
    reasons = [f"authorized networks include {cidr}" for cidr in open_to_anyone]
    if google_cloud := _google_cloud_access(cluster, networks):
        reasons.append(google_cloud)
    if reasons:
        return failed("; ".join(reasons), edges=[_internet_edge("; ".join(reasons))])
    if invalid:
        return unknown(
            f"authorized networks have entries that are not CIDRs: {', '.join(invalid)}",
            assumption="network: authorized networks unreadable; assumed restricted",
        )
    return passed(f"the public IP endpoint admits only {', '.join(networks.cidrs) or 'nobody'}")


def _google_cloud_access(cluster: GkeCluster, networks: AuthorizedNetworks) -> str | None:
    """Why every Compute Engine VM's public IP is admitted, if it is."""
    if networks.gcp_public_cidrs_access:
        return "any Compute Engine VM's public IP is admitted (gcpPublicCidrsAccessEnabled)"
    if networks.gcp_public_cidrs_access is None and not cluster.private_nodes:
        # GKE's documented default: clusters without private nodes admit Google Cloud's public
        # IPs through authorized networks; private clusters do not.
        return (
            "any Compute Engine VM's public IP is admitted (gcpPublicCidrsAccessEnabled not "
            "set: GKE's default for a cluster without private nodes)"
        )
    return None


def _internet_edge(why: str) -> Edge:
    return Edge(INTERNET, API, 0, "network", why)


setting_check(
    id="gke.endpoint.private_only",
    title="Control plane has no public IP endpoint",
    severity=Severity.MEDIUM,
    area=Area.NETWORK,
    maturity=Maturity.RUN,
    providers=GKE,
    rationale="Without a public IP endpoint an attacker needs a foothold in the VPC, or an IAM "
    "grant for the DNS-based endpoint, before the API server sees a single request; an "
    "allow-list needs only one address inside it.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enable the private endpoint and reach the control plane through the "
            "DNS-based endpoint (`--enable-dns-access`) or from the VPC.",
            cli=_update("--enable-private-endpoint"),
            terraform="google_container_cluster private_cluster_config.enable_private_endpoint = "
            "true",
        )
    },
    references=[NETWORK_ISOLATION, HARDENING],
    field="privateClusterConfig.enablePrivateEndpoint",
    read=lambda cluster: cluster.public_ip_endpoint,
    verdicts=(
        ((True,), Status.FAIL, "the control plane answers on a public IP"),
        ((False,), Status.PASS, "the control plane has no public IP endpoint"),
    ),
)


@check(
    id="gke.endpoint.authorized_networks_on_private",
    title="Authorized networks also guard the private endpoint",
    severity=Severity.LOW,
    area=Area.NETWORK,
    maturity=Maturity.RUN,
    providers=GKE,
    rationale="Unless enforced on the private endpoint, authorized networks leave the control "
    "plane open to every address in the VPC and the networks connected to it.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enforce authorized networks on the private endpoint too.",
            cli=_update(
                "--enable-master-authorized-networks "
                "--enable-authorized-networks-on-private-endpoint"
            ),
            terraform="google_container_cluster "
            "master_authorized_networks_config.private_endpoint_enforcement_enabled = true",
        )
    },
    references=[AUTHORIZED_NETWORKS, NETWORK_ISOLATION],
)
def authorized_networks_on_private(cluster: GkeCluster):
    networks = cluster.authorized_networks
    if networks is None or not networks.enabled:
        return failed("authorized networks are disabled")
    if networks.private_endpoint_enforcement:
        return passed("authorized networks are enforced on the private endpoint")
    return failed("authorized networks are not enforced on the private endpoint")


@check(
    id="gke.endpoint.dns_kubernetes_credentials",
    title="The DNS-based endpoint accepts only IAM-checked Google credentials",
    severity=Severity.MEDIUM,
    area=Area.NETWORK,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="The DNS-based endpoint is reachable from anywhere; it stays a barrier because it "
    "checks IAM (container.clusters.connect) on the caller's Google identity. Kubernetes "
    "service-account tokens and client certificates are not Google identities: allowed on it, "
    "a leaked one works from anywhere, whatever the IP endpoints allow.",
    remediation={
        Provider.GKE: Remediation(
            summary="Refuse Kubernetes service-account tokens and client certificates on the "
            "DNS-based endpoint.",
            cli=_update("--no-enable-k8s-tokens-via-dns --no-enable-k8s-certs-via-dns"),
            terraform="google_container_cluster control_plane_endpoints_config "
            "{ dns_endpoint_config { enable_k8s_tokens_via_dns = false "
            "enable_k8s_certs_via_dns = false } }",
        )
    },
    references=[
        f"{NETWORK_ISOLATION}#dns-based_endpoint",
        "https://cloud.google.com/blog/products/containers-kubernetes/"
        "new-dns-based-endpoint-for-the-gke-control-plane",
    ],
)
def dns_kubernetes_credentials(cluster: GkeCluster):
    dns = cluster.dns_endpoint
    if dns is None or not dns.allow_external_traffic:
        return passed("the DNS-based endpoint does not take user traffic")
    kinds = [
        kind
        for kind, allowed in (
            ("service-account tokens", dns.kubernetes_tokens),
            ("client certificates", dns.kubernetes_certificates),
        )
        if allowed
    ]
    if not kinds:
        return passed("the DNS-based endpoint admits only Google identities, checked by IAM")
    what = " and ".join(kinds)
    return failed(
        f"the DNS-based endpoint accepts Kubernetes {what} from anywhere",
        starts=[
            Start(
                StartKind.CREDENTIAL,
                "credential:kubernetes-token-via-dns",
                INTERNET,
                f"a Kubernetes credential the DNS-based endpoint accepts ({what}) leaks",
                edges=(
                    Edge(
                        INTERNET,
                        API,
                        0,
                        "network",
                        f"the DNS-based endpoint accepts Kubernetes {what} without an IAM check",
                    ),
                    Edge(API, USER, 0, "authentication", "the leaked credential authenticates"),
                ),
            )
        ],
    )


setting_check(
    id="gke.nodes.private",
    title="Nodes have no public IP addresses",
    severity=Severity.MEDIUM,
    area=Area.NETWORK,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="Nodes with external addresses expose the kubelet, NodePorts and anything bound to "
    "the host to the internet, guarded only by VPC firewall rules.",
    remediation={
        Provider.GKE: Remediation(
            summary="Give the nodes internal IP addresses only.",
            cli=_update("--enable-private-nodes"),
            terraform="google_container_cluster private_cluster_config.enable_private_nodes = "
            "true (per pool: google_container_node_pool network_config.enable_private_nodes)",
        )
    },
    references=[NETWORK_ISOLATION, HARDENING],
    field="privateClusterConfig.enablePrivateNodes",
    read=lambda cluster: cluster.private_nodes,
    verdicts=(
        ((True,), Status.PASS, "nodes have internal IP addresses only"),
        ((False,), Status.FAIL, "nodes get external IP addresses"),
    ),
)


@check(
    id="gke.network.policy_enforcement",
    title="Network policies are enforced",
    severity=Severity.MEDIUM,
    area=Area.NETWORK,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="Without an enforcing dataplane, NetworkPolicy objects are accepted and ignored: "
    "every pod can reach every other pod and the node metadata of the cluster.",
    remediation={
        Provider.GKE: Remediation(
            summary="Create clusters with Dataplane V2, or enable Calico enforcement: the "
            "NetworkPolicy add-on, then network policy.",
            cli="gcloud container clusters create NAME --location LOCATION --enable-dataplane-v2\n"
            + _update("--update-addons=NetworkPolicy=ENABLED")
            + "\n"
            + _update("--enable-network-policy"),
            terraform='google_container_cluster datapath_provider = "ADVANCED_DATAPATH", or '
            "network_policy { enabled = true } with addons_config.network_policy_config",
        )
    },
    references=[f"{DOCS}/how-to/network-policy", f"{DOCS}/concepts/dataplane-v2"],
)
def network_policy_enforcement(cluster: GkeCluster):
    datapath = cluster.datapath_provider
    if datapath == "ADVANCED_DATAPATH":
        return passed("Dataplane V2 enforces network policies")
    if cluster.network_policy:
        return passed("Calico enforces network policies")
    if datapath is not None and datapath not in DATAPATHS:
        return unknown(f"unrecognised networkConfig.datapathProvider {datapath!r}")
    return failed("no network policy enforcement: NetworkPolicy objects have no effect")


@check(
    id="gke.auth.anonymous",
    title="Anonymous requests reach only the health endpoints",
    severity=Severity.HIGH,
    area=Area.AUTHENTICATION,
    maturity=Maturity.CRAWL,
    providers=GKE,
    rationale="With anonymous authentication enabled, anyone who reaches the endpoint acts as "
    "system:anonymous: a single RBAC grant to system:unauthenticated then hands them the "
    "cluster. The LIMITED mode answers anonymous requests on health-check endpoints only.",
    remediation={
        Provider.GKE: Remediation(
            summary="Let anonymous requests reach the health-check endpoints only (LIMITED).",
            cli=_update("--anonymous-authentication-config=LIMITED"),
            terraform="google_container_cluster anonymous_authentication_config "
            '{ mode = "LIMITED" }',
        )
    },
    references=[
        HARDENING,
        f"{API_REFERENCE}#anonymousauthenticationconfig",
        "https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-requests",
    ],
)
def anonymous_auth(cluster: GkeCluster):
    if (probed := probed_anonymous(cluster)) is not None:
        return probed
    mode = cluster.anonymous_mode
    if mode == "LIMITED":
        return passed("anonymous requests are limited to the health-check endpoints")
    if mode is None or mode in ANONYMOUS_MODES:
        setting = mode or "not set"
        return failed(
            f"anonymousAuthenticationConfig.mode is {setting}: anonymous requests reach every "
            "endpoint",
            edges=[ANONYMOUS_AUTHENTICATED],
        )
    return unknown(
        f"unrecognised anonymousAuthenticationConfig.mode {mode!r}",
        assumption=f"authentication: anonymous mode {mode!r} not understood; assumed limited",
    )


@check(
    id="gke.auth.basic_auth",
    title="No static basic-auth password",
    severity=Severity.CRITICAL,
    area=Area.AUTHENTICATION,
    maturity=Maturity.CRAWL,
    providers=GKE,
    rationale="GKE's basic-auth user is a cluster admin with a static password that anyone "
    "allowed container.clusters.getCredentials can read from the cluster resource; GKE 1.19 and "
    "later no longer support it.",
    remediation={
        Provider.GKE: Remediation(
            summary="Disable basic authentication, or upgrade the control plane to 1.19 or later.",
            cli=_update("--no-enable-basic-auth"),
            terraform="google_container_cluster: remove master_auth.username and "
            "master_auth.password (google provider 3.x)",
        )
    },
    references=[API_SERVER_AUTH, f"{API_REFERENCE}#masterauth", HARDENING],
)
def basic_auth(cluster: GkeCluster):
    username = cluster.basic_auth_username
    if username is None:
        return passed("basic authentication is disabled")
    what = f"the basic-auth password of {username}"
    return failed(
        f"basic authentication is enabled for user {username}",
        starts=[admin_credential(what)],
    )


@check(
    id="gke.auth.client_certificate",
    title="No legacy client certificate was issued",
    severity=Severity.MEDIUM,
    area=Area.AUTHENTICATION,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="The issued certificate authenticates as user client until the cluster CA is "
    "rotated: it cannot be revoked, and anyone allowed container.clusters.getCredentials can "
    "read its key. It has no RBAC permission of its own; any binding to user client is "
    "then reachable by whoever holds the key.",
    remediation={
        Provider.GKE: Remediation(
            summary="An issued certificate cannot be withdrawn: recreate the cluster with "
            "`--no-issue-client-certificate`; until then, bind nothing to user client.",
            terraform="google_container_cluster master_auth { client_certificate_config { "
            "issue_client_certificate = false } }",
        )
    },
    references=[API_SERVER_AUTH, f"{API_REFERENCE}#masterauth", HARDENING],
)
def client_certificate(cluster: GkeCluster):
    if not cluster.client_certificate_issued:
        return passed("no client certificate was issued")
    return failed(
        "a client certificate (user client) was issued",
        starts=[
            Start(
                StartKind.CREDENTIAL,
                "credential:gke-client-certificate",
                INTERNET,
                "the cluster's client certificate leaks (it cannot be revoked)",
                edges=(
                    Edge(API, CLIENT_USER, 0, "authentication", "it authenticates as user client"),
                    Edge(CLIENT_USER, USER, 0, "authentication", "user client is an identity"),
                ),
            )
        ],
    )


@check(
    id="gke.auth.google_groups",
    title="Google Groups for RBAC is enabled",
    severity=Severity.LOW,
    area=Area.AUTHENTICATION,
    maturity=Maturity.RUN,
    providers=GKE,
    rationale="Binding RBAC roles to Google Groups keeps who-is-admin in the identity provider, "
    "where joiners and leavers are handled, instead of in per-user bindings in every cluster.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enable Google Groups for RBAC.",
            cli=_update("--security-group=gke-security-groups@YOUR_DOMAIN"),
            terraform="google_container_cluster authenticator_groups_config.security_group",
        )
    },
    references=[f"{DOCS}/how-to/google-groups-rbac", RBAC_BEST_PRACTICES],
)
def google_groups(cluster: GkeCluster):
    if cluster.google_groups_security_group:
        return passed(f"groups come from {cluster.google_groups_security_group}")
    return failed("authenticatorGroupsConfig is not enabled")


setting_check(
    id="gke.auth.identity_service",
    title="No external identity provider asserts users the scan cannot see",
    severity=Severity.INFO,
    area=Area.AUTHENTICATION,
    maturity=Maturity.RUN,
    providers=GKE,
    rationale="Identity Service for GKE lets an external OIDC or LDAP provider assert users and "
    "groups; its ClientConfig (issuer, claims, prefixes) lives in the cluster, so who it can "
    "make admin depends on a configuration the cluster resource does not show.",
    remediation={
        Provider.GKE: Remediation(
            summary="Review the ClientConfig `default` in kube-public (user and group "
            "prefixes), or disable the service.",
            cli=_update("--no-enable-identity-service"),
            terraform="google_container_cluster identity_service_config.enabled",
        )
    },
    references=[f"{DOCS}/how-to/oidc"],
    field="identityServiceConfig.enabled",
    read=lambda cluster: cluster.identity_service,
    verdicts=(
        ((False,), Status.PASS, "only Google identities authenticate"),
        (
            (True,),
            Status.UNKNOWN,
            "Identity Service for GKE is enabled; its ClientConfig was not read, so the prefixes "
            "of the users and groups it asserts are not known",
        ),
    ),
)


@check(
    id="gke.rbac.insecure_bindings_allowed",
    title="GKE refuses new bindings to system:authenticated and system:unauthenticated",
    severity=Severity.HIGH,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="On GKE system:authenticated is every Google account, so a binding to it is as "
    "public as one to system:unauthenticated. With rbacBindingConfig set, GKE rejects new "
    "non-default bindings to these groups (existing ones stay until removed), so granting them "
    "power takes two mistakes instead of one.",
    remediation={
        Provider.GKE: Remediation(
            summary="Refuse new bindings to system:authenticated and system:unauthenticated "
            "(GKE 1.30.1-gke.1283000 or later).",
            cli=_update(
                "--no-enable-insecure-binding-system-authenticated "
                "--no-enable-insecure-binding-system-unauthenticated"
            ),
            terraform="google_container_cluster rbac_binding_config { "
            "enable_insecure_binding_system_authenticated = false "
            "enable_insecure_binding_system_unauthenticated = false }",
        )
    },
    references=[
        RBAC_BEST_PRACTICES,
        f"{API_REFERENCE}#rbacbindingconfig",
    ],
)
def insecure_bindings_allowed(cluster: GkeCluster):
    groups = (
        (
            "system:authenticated",
            "enableInsecureBindingSystemAuthenticated",
            cluster.bindings_to_authenticated_allowed,
            AUTHENTICATED,
            BINDINGS_TO_AUTHENTICATED,
        ),
        (
            "system:unauthenticated",
            "enableInsecureBindingSystemUnauthenticated",
            cluster.bindings_to_unauthenticated_allowed,
            ANONYMOUS,
            BINDINGS_TO_UNAUTHENTICATED,
        ),
    )
    outcomes = []
    for group, field, allowed, node, gate in groups:
        resource = f"rbacBindingConfig.{field}"
        if allowed is False:
            outcomes.append(passed(f"GKE refuses new bindings to {group}", resource))
            continue
        setting = "true" if allowed else "not set, which allows them"
        outcomes.append(
            failed(
                f"GKE accepts bindings to {group} ({field} {setting})",
                resource,
                edges=[Edge(node, gate, 0, "authorization", f"GKE accepts bindings to {group}")],
            )
        )
    return outcomes


@check(
    id="gke.rbac.legacy_abac",
    title="Legacy ABAC authorization is disabled",
    severity=Severity.CRITICAL,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.CRAWL,
    providers=GKE,
    rationale="Legacy ABAC grants statically defined permissions beyond RBAC and IAM; Kubernetes "
    "service accounts get full API permissions, so every pod's token is cluster-admin.",
    remediation={
        Provider.GKE: Remediation(
            summary="Disable legacy ABAC authorization.",
            cli=_update("--no-enable-legacy-authorization"),
            terraform="google_container_cluster enable_legacy_abac = false",
        )
    },
    references=[f"{HARDENING}#leave_abac_disabled", f"{DOCS}/how-to/role-based-access-control"],
)
def legacy_abac(cluster: GkeCluster):
    if not cluster.legacy_abac:
        return passed("legacy ABAC is disabled")
    return failed(
        "legacy ABAC is enabled: service accounts hold full API permissions",
        edges=[
            Edge(
                SERVICE_ACCOUNTS,
                ADMIN,
                0,
                "authorization",
                "legacy ABAC gives every Kubernetes service account full API permissions",
            )
        ],
        starts=[admin_credential("any Kubernetes service-account token (legacy ABAC)")],
    )


def _pool_resource(cluster: GkeCluster, pool: NodePool) -> str:
    return f"{cluster.arn_or_id}/nodePools/{pool.name}"


def _each_pool(cluster: GkeCluster, judge: Callable[[NodePool], Outcome]) -> list[Outcome] | None:
    """One outcome per node pool; a cluster without pools has nothing to judge."""
    return [judge(pool) for pool in cluster.node_pools] or None


@check(
    id="gke.nodes.metadata_server",
    title="Pods cannot read their node's Google credentials",
    severity=Severity.HIGH,
    area=Area.WORKLOADS,
    maturity=Maturity.CRAWL,
    providers=GKE,
    rationale="Unless the pool runs the GKE metadata server (Workload Identity), every pod can "
    "fetch an access token of the node's Google service account from the Compute Engine "
    "metadata server, with all the IAM power that account holds.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enable Workload Identity and run the GKE metadata server on each pool.",
            cli=_update("--workload-pool=PROJECT_ID.svc.id.goog")
            + "\ngcloud container node-pools update POOL --cluster NAME --location LOCATION "
            "--workload-metadata=GKE_METADATA",
            terraform="google_container_node_pool node_config { workload_metadata_config { mode "
            '= "GKE_METADATA" } }',
        )
    },
    references=[WORKLOAD_IDENTITY, HARDENING],
)
def metadata_server(cluster: GkeCluster):
    def judge(pool: NodePool):
        resource, mode = _pool_resource(cluster, pool), pool.metadata_mode
        if mode is not None and mode not in METADATA_MODES:
            return unknown(
                f"pool {pool.name}: unrecognised workloadMetadataConfig.mode {mode!r}",
                resource,
                assumption=f"workloads: metadata mode {mode!r} of pool {pool.name} not "
                "understood; assumed it hides the node's credentials",
                affects=[StartKind.WORKLOAD],
            )
        if _hides_metadata(cluster, pool):
            return passed("the GKE metadata server hides the node's credentials", resource)
        return failed(
            f"pool {pool.name}: pods can read the token of {pool.service_account_label} from the "
            f"Compute Engine metadata server (workloadMetadataConfig.mode {mode or 'not set'})",
            resource,
            edges=_from_pods_on(
                cluster, pool, lambda source, who: node_credential_edge(source, pool, who)
            ),
        )

    return _each_pool(cluster, judge)


def _hides_metadata(cluster: GkeCluster, pool: NodePool) -> bool:
    """The GKE metadata server runs on the pool: pods see neither the node's token nor kube-env.
    A mode this version does not know is assumed to (metadata_server says so, as UNKNOWN)."""
    mode = pool.metadata_mode
    return (
        mode == "GKE_METADATA"
        or (cluster.autopilot and mode is None)
        or (mode is not None and mode not in METADATA_MODES)
    )


def _from_pods_on(
    cluster: GkeCluster, pool: NodePool, edge: Callable[[str, str], Edge]
) -> list[Edge]:
    """`edge(source, who)` from some pod on the pool, and from every known workload whose
    node's pool is certain to be this one."""
    edges = [edge(POD, f"a pod on pool {pool.name}")]
    for workload in cluster.workloads.items if cluster.workloads else ():
        nodes = workload.nodes or (None,)
        if any(cluster.pool_of_node(node) == pool for node in nodes):
            edges.append(edge(workload.node, f"{workload} on pool {pool.name}"))
    return edges


@check(
    id="gke.nodes.default_service_account",
    title="Node pools do not run as the Compute Engine default service account",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="The Compute Engine default service account is granted the project Editor role "
    "unless an organization policy (iam.automaticIamGrantsForDefaultServiceAccounts) stopped "
    "it. With the cloud-platform scope its token carries all of Editor: container.* "
    "permissions, which GKE honours for Kubernetes requests, and control of every node.",
    remediation={
        Provider.GKE: Remediation(
            summary="Create pools with a least-privilege service account "
            "(roles/container.defaultNodeServiceAccount) and move workloads to them.",
            cli="gcloud container node-pools create POOL --cluster NAME --location LOCATION "
            "--service-account SA_EMAIL",
            terraform="google_container_node_pool node_config.service_account (and oauth_scopes)",
        )
    },
    references=[NODE_SERVICE_ACCOUNTS, ACCESS_SCOPES, HARDENING],
)
def default_service_account(cluster: GkeCluster):
    def judge(pool: NodePool):
        resource = _pool_resource(cluster, pool)
        if not pool.uses_default_service_account:
            return passed(f"pool {pool.name} runs as {pool.service_account_label}", resource)
        if not pool.has_cloud_platform_scope:
            return failed(
                f"pool {pool.name} runs as the Compute Engine default service account; its "
                "access scopes limit what its token can call",
                resource,
            )
        return failed(
            f"pool {pool.name} runs as the Compute Engine default service account with the "
            "cloud-platform scope",
            resource,
            edges=[
                Edge(
                    pool.identity_node,
                    ADMIN,
                    0,
                    "authorization",
                    f"pool {pool.name}'s token is the Compute Engine default service account's "
                    "with the cloud-platform scope: project Editor unless an organization "
                    "policy stopped that grant, and Editor's container.* permissions count in "
                    "the cluster",
                )
            ],
        )

    return _each_pool(cluster, judge)


@check(
    id="gke.workloads.workload_identity",
    title="Workload Identity Federation is enabled",
    severity=Severity.MEDIUM,
    area=Area.WORKLOADS,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="Workload Identity gives each Kubernetes service account its own Google identity, "
    "so pods need neither exported keys nor the node's service account to call Google APIs.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enable Workload Identity Federation with the project's workload pool.",
            cli=_update("--workload-pool=PROJECT_ID.svc.id.goog"),
            terraform="google_container_cluster workload_identity_config.workload_pool",
        )
    },
    references=[WORKLOAD_IDENTITY],
)
def workload_identity(cluster: GkeCluster):
    if cluster.workload_pool:
        return passed(f"workload pool {cluster.workload_pool}")
    return failed("workloadIdentityConfig.workloadPool is not set")


@check(
    id="gke.nodes.shielded",
    title="Shielded GKE nodes are enabled",
    severity=Severity.HIGH,
    area=Area.WORKLOADS,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="Each node keeps a kubelet credential in its kube-env instance metadata. Without "
    "Shielded GKE Nodes the control plane does not verify that it is used from a node, so whoever "
    "reads it (root on a node, or any pod on a pool without the GKE metadata server) acts as User "
    "kubelet, which GKE's own kubelet-cluster-admin binding gives ClusterRole system:node: every "
    "secret, service-account tokens and pods anywhere.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enable Shielded GKE nodes.",
            cli=_update("--enable-shielded-nodes"),
            terraform="google_container_cluster enable_shielded_nodes = true",
        )
    },
    references=[SHIELDED_NODES, METADATA_CONCEALMENT],
)
def shielded_nodes(cluster: GkeCluster):
    if cluster.shielded_nodes is None:
        return unknown("shieldedNodes is not reported")
    if cluster.shielded_nodes:
        return passed("shielded GKE nodes are enabled")
    exposed = [pool.name for pool in cluster.node_pools if not _hides_metadata(cluster, pool)]
    readers = f"; pods on pool(s) {', '.join(exposed)} can read it too" if exposed else ""
    return failed(
        "shielded GKE nodes are disabled: the kubelet credential in kube-env works from anywhere "
        f"as User kubelet (root on a node reads it{readers})",
        edges=_kubelet_credential_edges(cluster),
        starts=[
            Start(
                StartKind.CREDENTIAL,
                "credential:gke-kubelet",
                INTERNET,
                "the kubelet credential from a node's kube-env leaks",
                edges=(Edge(API, subject_node(KUBELET), 0, "authentication", _KUBELET_WORKS),),
            )
        ],
    )


_KUBELET_WORKS = (
    "without Shielded GKE Nodes the kubelet credential authenticates as User kubelet from "
    "anywhere, not only from its node"
)


def _kubelet_credential_edges(cluster: GkeCluster) -> list[Edge]:
    """Who reads kube-env: root on any node, and pods on pools without the GKE metadata server.
    What User kubelet may do is RBAC's to say (the platform's grants are in the graph)."""
    kubelet = subject_node(KUBELET)

    def reads(source: str, who: str) -> Edge:
        return Edge(
            source,
            kubelet,
            0,
            "credential",
            f"{who} reads the kubelet credential from kube-env in the instance metadata; "
            + _KUBELET_WORKS,
        )

    edges = [reads(NODE_ANY, "root on a node")]
    edges += [reads(f"node:{name}", f"root on {name}") for name in cluster.known_nodes()]
    for pool in cluster.node_pools:
        if not _hides_metadata(cluster, pool):
            edges += _from_pods_on(cluster, pool, reads)
    return edges


@check(
    id="gke.workloads.binary_authorization",
    title="Binary Authorization enforces which images run",
    severity=Severity.LOW,
    area=Area.WORKLOADS,
    maturity=Maturity.RUN,
    providers=GKE,
    rationale="Without admission-time image policy, anyone who can create a pod can run any "
    "image, including one built to escape to its node.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enforce the project's Binary Authorization policy.",
            cli=_update("--binauthz-evaluation-mode=PROJECT_SINGLETON_POLICY_ENFORCE"),
            terraform="google_container_cluster binary_authorization { evaluation_mode = "
            '"PROJECT_SINGLETON_POLICY_ENFORCE" }',
        )
    },
    references=["https://cloud.google.com/binary-authorization/docs/setting-up"],
)
def binary_authorization(cluster: GkeCluster):
    mode = cluster.binary_authorization_mode
    if mode == "PROJECT_SINGLETON_POLICY_ENFORCE" or (
        mode in (None, "EVALUATION_MODE_UNSPECIFIED") and cluster.binary_authorization_enabled
    ):
        return passed("Binary Authorization enforces the project policy")
    if mode is not None and mode not in BINAUTHZ_MODES:
        return unknown(f"unrecognised binaryAuthorization.evaluationMode {mode!r}")
    return failed("Binary Authorization is disabled")


setting_check(
    id="gke.workloads.security_posture",
    title="Security posture scanning is enabled",
    severity=Severity.LOW,
    area=Area.WORKLOADS,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="The security posture dashboard audits workload configuration (privileged pods, "
    "host access) continuously, between scans like this one.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enable security posture scanning.",
            cli=_update("--security-posture=standard"),
            terraform='google_container_cluster security_posture_config { mode = "BASIC" }',
        )
    },
    references=[f"{DOCS}/concepts/about-security-posture-dashboard"],
    field="securityPostureConfig.mode",
    read=lambda cluster: cluster.security_posture_mode,
    verdicts=(
        (POSTURE_ON, Status.PASS, "security posture mode {value}"),
        (("DISABLED",), Status.FAIL, "security posture is disabled"),
        ((None, "MODE_UNSPECIFIED"), Status.UNKNOWN, "securityPostureConfig.mode is not reported"),
    ),
)


@check(
    id="gke.secrets.kms_encryption",
    title="Secrets are encrypted with a Cloud KMS key",
    severity=Severity.LOW,
    area=Area.DATA_PROTECTION,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="GKE encrypts etcd at rest with Google-managed keys; application-layer secrets "
    "encryption adds a Cloud KMS key you control, audit and can revoke.",
    remediation={
        Provider.GKE: Remediation(
            summary="Encrypt secrets at the application layer with a Cloud KMS key.",
            cli=_update("--database-encryption-key=projects/P/locations/L/keyRings/R/cryptoKeys/K"),
            terraform='google_container_cluster database_encryption { state = "ENCRYPTED" '
            "key_name = ... }",
        )
    },
    references=[f"{DOCS}/how-to/encrypting-secrets"],
)
def secrets_kms_encryption(cluster: GkeCluster):
    state = cluster.database_encryption_state
    if state in ENCRYPTION_ON and cluster.database_encryption_key:
        return passed(f"secrets are encrypted with {cluster.database_encryption_key}")
    if state is None or state in ENCRYPTION_OFF:
        return failed("application-layer secrets encryption is off")
    if state in ENCRYPTION_ON:
        return failed(f"databaseEncryption.state is {state} but no keyName is reported")
    return unknown(f"unrecognised databaseEncryption.state {state!r}")


@check(
    id="gke.version.release_channel",
    title="The cluster is enrolled in a release channel",
    severity=Severity.MEDIUM,
    area=Area.LIFECYCLE,
    maturity=Maturity.CRAWL,
    providers=GKE,
    rationale="A release channel keeps the control plane and nodes on supported, patched "
    "versions without anyone having to schedule it; outside one, versions are pinned by hand "
    "and forced upgrades arrive at end of support.",
    remediation={
        Provider.GKE: Remediation(
            summary="Enroll the cluster in a release channel.",
            cli=_update("--release-channel=regular"),
            terraform='google_container_cluster release_channel { channel = "REGULAR" }',
        )
    },
    references=[f"{DOCS}/concepts/release-channels"],
)
def release_channel(cluster: GkeCluster):
    channel = cluster.release_channel
    if channel in CHANNELS:
        return passed(f"release channel {channel} (control plane {cluster.version})")
    if channel in (None, "UNSPECIFIED"):
        return failed(f"no release channel (control plane {cluster.version})")
    return unknown(f"unrecognised releaseChannel.channel {channel!r}")


@check(
    id="gke.version.node_skew",
    title="Node pools run the control plane's minor version",
    severity=Severity.LOW,
    area=Area.LIFECYCLE,
    maturity=Maturity.WALK,
    providers=GKE,
    rationale="Nodes behind the control plane miss the kubelet and node fixes the control plane "
    "already has, and drift toward the end of the supported version skew.",
    remediation={
        Provider.GKE: Remediation(
            summary="Upgrade the node pool to the control plane's version, or enable node "
            "auto-upgrade.",
            cli="gcloud container clusters upgrade NAME --location LOCATION --node-pool POOL",
            terraform="google_container_node_pool version or management { auto_upgrade = true }",
        )
    },
    references=[
        f"{DOCS}/how-to/upgrading-a-cluster",
        "https://kubernetes.io/releases/version-skew-policy/",
    ],
)
def node_skew(cluster: GkeCluster):
    if not cluster.node_pools:
        return None
    control_plane = cluster.minor_version()
    if control_plane is None:
        return unknown(f"currentMasterVersion {cluster.version!r} is not a Kubernetes version")
    behind, unreadable = [], []
    for pool in cluster.node_pools:
        minor = minor_version(pool.version)
        if minor is None:
            unreadable.append(pool.name)
        elif minor < control_plane:
            behind.append(f"{pool.name} ({pool.version})")
    if behind:
        return failed(f"pools behind control plane {cluster.version}: {', '.join(behind)}")
    if unreadable:
        return unknown(f"node pool versions not readable: {', '.join(unreadable)}")
    return passed(f"every pool runs {control_plane[0]}.{control_plane[1]}")


@check(
    id="gke.logging.system_components",
    title="System component logs are sent to Cloud Logging",
    severity=Severity.MEDIUM,
    area=Area.LOGGING,
    maturity=Maturity.CRAWL,
    providers=GKE,
    rationale="Kubernetes Admin Activity audit logs always reach Cloud Audit Logs; without "
    "system component logs, what the nodes and system pods saw during an incident is lost.",
    remediation={
        Provider.GKE: Remediation(
            summary="Send system component logs to Cloud Logging.",
            cli=_update("--logging=SYSTEM,WORKLOAD"),
            terraform="google_container_cluster logging_config { enable_components = "
            '["SYSTEM_COMPONENTS", "WORKLOADS"] }',
        )
    },
    references=[f"{DOCS}/concepts/about-logs", f"{DOCS}/how-to/audit-logging"],
)
def system_component_logs(cluster: GkeCluster):
    components = cluster.logging_components
    if components is not None:
        if "SYSTEM_COMPONENTS" in components:
            return passed(f"logged components: {', '.join(components)}")
        return failed(f"SYSTEM_COMPONENTS not logged ({', '.join(components) or 'nothing'})")
    if cluster.logging_service is None:
        return unknown("neither loggingConfig nor loggingService is reported")
    if cluster.logging_service == "none":
        return failed("loggingService is none")
    return passed(f"loggingService {cluster.logging_service}")


setting_check(
    id="gke.logging.control_plane",
    title="API server logs are sent to Cloud Logging",
    severity=Severity.LOW,
    area=Area.LOGGING,
    maturity=Maturity.RUN,
    providers=GKE,
    rationale="Control-plane logs show the API server's own view (rejected requests, admission "
    "decisions) that audit logs summarise; they are off unless enabled.",
    remediation={
        Provider.GKE: Remediation(
            summary="Send API server logs to Cloud Logging.",
            cli=_update("--logging=SYSTEM,WORKLOAD,API_SERVER"),
            terraform="google_container_cluster logging_config { enable_components = "
            '["SYSTEM_COMPONENTS", "WORKLOADS", "APISERVER"] }',
        )
    },
    references=[f"{DOCS}/concepts/about-logs"],
    field="loggingConfig.componentConfig.enableComponents",
    read=lambda cluster: "APISERVER" in (cluster.logging_components or ()),
    verdicts=(
        ((True,), Status.PASS, "API server logs are collected"),
        (
            (False,),
            Status.FAIL,
            "API server logs are not collected (loggingConfig has no APISERVER)",
        ),
    ),
)
