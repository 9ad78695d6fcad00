"""Azure Kubernetes Service control-plane checks.

What the model takes from AKS (sources in each check's references):
- Network: a cluster is public unless created private; without authorized IP ranges anyone may
  reach the API server.
- Authentication: AKS runs kube-apiserver with --anonymous-auth=false; Microsoft's CIS
  benchmark pages attest it for AKS 1.21 through 1.32. Other versions are not documented, so
  without a probe that barrier is assumed, not known.
- Local accounts (on unless disableLocalAccounts) mean a static cluster-admin kubeconfig exists
  (listClusterAdminCredential): whoever holds it is admin, with no Entra ID sign-in or audit.
- Members of the Entra admin groups are bound to cluster-admin; with Azure RBAC for Kubernetes
  authorization, Azure role assignments grant Kubernetes power too, and mutguard does not read
  role assignments.
- Without Kubernetes RBAC there is no authorization: any identity that authenticates is allowed
  everything (Kubernetes' AlwaysAllow mode).
"""

from __future__ import annotations

from datetime import date

from mutguard.checks import check, failed, passed, setting_check, unknown
from mutguard.checks.common import allow_list_judgement, probed_anonymous, support_ends
from mutguard.models import Area, Maturity, Provider, Remediation, Severity, Status
from mutguard.mut import (
    ADMIN,
    API,
    AUTHENTICATED,
    INTERNET,
    Edge,
    StartKind,
    admin_credential,
)
from mutguard.providers.aks import AksCluster

AKS = (Provider.AKS,)
DOCS = "https://learn.microsoft.com/en-us/azure/aks"
CALENDAR = "aks_versions.json"  # mutguard/data/: the support calendar, with its sources
REST = "https://learn.microsoft.com/en-us/rest/api/aks/managed-clusters/get"
TERRAFORM = "azurerm_kubernetes_cluster"
CIS = f"{DOCS}/cis-kubernetes"
# Microsoft's CIS benchmark pages for AKS report 1.2.1 (--anonymous-auth=false) as Pass for
# these versions; nothing is published for later ones.
ANONYMOUS_OFF_ATTESTED = ((1, 21), (1, 32))
POLICY_ENGINES = ("azure", "calico", "cilium")
NO_POLICY_ENGINE = "none"
VERSION_CHANNELS = ("patch", "stable", "rapid")
NODE_IMAGE_CHANNEL = "node-image"
NO_CHANNEL = "none"
NODE_OS_CHANNELS = ("NodeImage", "SecurityPatch")
NODE_OS_MANUAL = ("None", "Unmanaged")
MANAGED_IDENTITIES = ("SystemAssigned", "UserAssigned")
MSI_CLIENT_ID = "msi"  # servicePrincipalProfile.clientId of a managed-identity cluster
SSH_DISABLED, SSH_LOCAL_USER = "Disabled", "LocalUser"
LONG_TERM_SUPPORT = "AKSLongTermSupport"
LOCAL_ADMIN_KUBECONFIG = "the local cluster-admin kubeconfig (az aks get-credentials --admin)"


UPGRADE = "az aks upgrade -g RG -n NAME --kubernetes-version X.Y"


def _az_update(flags: str) -> str:
    return f"az aks update -g RG -n NAME {flags}"


def _update(summary: str, flags: str, terraform: str) -> dict[Provider, Remediation]:
    """A fix by one `az aks update` and one argument of the Terraform resource."""
    return {
        Provider.AKS: Remediation(
            summary=summary, cli=_az_update(flags), terraform=f"{TERRAFORM} {terraform}"
        )
    }


@check(
    id="aks.endpoint.public_unrestricted",
    title="API server is not open to the whole internet",
    severity=Severity.CRITICAL,
    area=Area.NETWORK,
    maturity=Maturity.CRAWL,
    providers=AKS,
    rationale="A public AKS API server without authorized IP ranges (or with ranges anyone can "
    "rent into) removes the network barrier: every leaked credential or RBAC mistake is then "
    "exploitable from anywhere.",
    remediation={
        Provider.AKS: Remediation(
            summary="Authorize only your IP ranges on the API server, or create the cluster "
            "private.",
            cli=_az_update("--api-server-authorized-ip-ranges 203.0.113.0/24")
            + "\naz aks create -g RG -n NAME --enable-private-cluster",
            terraform=f"{TERRAFORM} api_server_access_profile {{ authorized_ip_ranges = [...] }} "
            "(or private_cluster_enabled = true)",
        )
    },
    references=[f"{DOCS}/api-server-authorized-ip-ranges", f"{DOCS}/private-clusters", REST],
)
def endpoint_public_unrestricted(cluster: AksCluster):
    if not cluster.endpoint.public:
        return passed("private cluster: the API server has only a private endpoint")
    ranges = cluster.endpoint.public_cidrs
    if not ranges:
        return failed(
            "public API server with no authorized IP ranges",
            edges=[Edge(INTERNET, API, 0, "network", "public API server with no IP allow-list")],
        )
    judged = allow_list_judgement("authorizedIpRanges", ranges, "the public API server")
    if judged is not None:
        return judged
    return passed(f"public API server limited to {', '.join(ranges)}")


setting_check(
    id="aks.network.policy",
    title="A network policy engine enforces Kubernetes NetworkPolicies",
    severity=Severity.MEDIUM,
    area=Area.NETWORK,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="Without a network policy engine, NetworkPolicy objects are accepted but ignored: "
    "every pod can reach every other pod, so one exploited app can probe the whole cluster.",
    remediation=_update(
        "Enforce NetworkPolicies with a network policy engine: azure (or cilium, calico).",
        "--network-policy azure",
        'network_profile { network_policy = "azure" }',
    ),
    references=[f"{DOCS}/use-network-policies", REST],
    field="networkProfile.networkPolicy",
    read=lambda cluster: cluster.network_policy,
    verdicts=(
        (POLICY_ENGINES, Status.PASS, "networkProfile.networkPolicy is {value}"),
        (
            (None, NO_POLICY_ENGINE),
            Status.FAIL,
            "no network policy engine: NetworkPolicies are not enforced",
        ),
    ),
)


@check(
    id="aks.endpoint.private",
    title="API server is private",
    severity=Severity.MEDIUM,
    area=Area.NETWORK,
    maturity=Maturity.RUN,
    providers=AKS,
    rationale="A private cluster's API server is not on the internet at all: an attacker must "
    "get into the virtual network first, where an allow-list needs only one address in it.",
    remediation={
        Provider.AKS: Remediation(
            summary="Create the cluster private, or make a cluster with API Server VNet "
            "Integration private in place.",
            cli="az aks create -g RG -n NAME --enable-private-cluster\n"
            + _az_update("--enable-private-cluster"),
            terraform=f"{TERRAFORM} private_cluster_enabled = true",
        )
    },
    references=[f"{DOCS}/private-clusters", REST],
)
def endpoint_private(cluster: AksCluster):
    integration = " (API Server VNet Integration)" if cluster.vnet_integration else ""
    if not cluster.endpoint.private:
        return failed(f"the API server has a public endpoint{integration}")
    dns = f"private DNS zone {cluster.private_dns_zone or 'not reported'}"
    if cluster.public_fqdn:
        dns += "; its name also resolves in public DNS, to the private address"
    return passed(f"private cluster{integration}: {dns}")


def _anonymous_attested(minor: tuple[int, int]) -> bool:
    first, last = ANONYMOUS_OFF_ATTESTED
    return first <= minor <= last


@check(
    id="aks.auth.anonymous",
    title="Anonymous requests are not authenticated",
    severity=Severity.HIGH,
    area=Area.AUTHENTICATION,
    maturity=Maturity.CRAWL,
    providers=AKS,
    rationale="With anonymous authentication, anyone who reaches the API server acts as "
    "system:anonymous: a single RBAC grant to system:unauthenticated then hands them the cluster.",
    remediation={
        Provider.AKS: Remediation(
            summary="AKS sets kube-apiserver's flags itself: if the probe shows anonymous "
            "access, keep RBAC free of grants to system:anonymous and system:unauthenticated, "
            "move to a supported version and raise it with Azure support.",
            cli=UPGRADE,
            terraform=f"{TERRAFORM} kubernetes_version",
        )
    },
    references=[
        CIS,
        "https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-requests",
    ],
)
def anonymous_auth(cluster: AksCluster):
    if (probed := probed_anonymous(cluster)) is not None:
        return probed
    minor = cluster.minor_version()
    if minor is not None and _anonymous_attested(minor):
        return passed(f"AKS runs kube-apiserver {cluster.version} with --anonymous-auth=false")
    return unknown(
        f"AKS documents --anonymous-auth=false for 1.21 to 1.32, not for {cluster.version!r}, "
        "and the API server was not probed",
        assumption=f"authentication: anonymous access on AKS {cluster.version} not known; "
        "assumed off as documented for 1.21 to 1.32",
        affects=[StartKind.INTERNET],
    )


@check(
    id="aks.auth.entra_id",
    title="Users sign in with AKS-managed Microsoft Entra ID",
    severity=Severity.MEDIUM,
    area=Area.AUTHENTICATION,
    maturity=Maturity.CRAWL,
    providers=AKS,
    rationale="Without Microsoft Entra integration, people reach the cluster only with static "
    "client certificates, which cannot be revoked one by one, bypass MFA and Conditional Access, "
    "and name no person in the audit log.",
    remediation=_update(
        "Enable AKS-managed Microsoft Entra integration, with an admin group.",
        "--enable-aad --aad-admin-group-object-ids GROUP_ID",
        "azure_active_directory_role_based_access_control { admin_group_object_ids = [GROUP_ID] }",
    ),
    references=[f"{DOCS}/managed-azure-ad", f"{DOCS}/concepts-identity"],
)
def entra_id(cluster: AksCluster):
    if not cluster.entra_id:
        return failed("no aadProfile: users authenticate with local client certificates only")
    if not cluster.entra_id_managed:
        return failed("legacy Azure AD integration (aadProfile.managed is not true)")
    return passed("AKS-managed Microsoft Entra integration is enabled")


@check(
    id="aks.auth.local_accounts",
    title="Local accounts are disabled",
    severity=Severity.HIGH,
    area=Area.AUTHENTICATION,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="While local accounts are enabled (the AKS default), anyone allowed "
    "listClusterAdminCredential gets a static cluster-admin kubeconfig: one leak of it is "
    "cluster-admin, with no Entra ID sign-in, no MFA and no named identity in the audit log.",
    remediation=_update(
        "Disable local accounts; this needs Entra integration (`--enable-aad`).",
        "--disable-local-accounts",
        "local_account_disabled = true",
    ),
    references=[f"{DOCS}/manage-local-accounts-managed-azure-ad", CIS],
)
def local_accounts(cluster: AksCluster):
    if cluster.local_accounts_disabled:
        return passed("disableLocalAccounts is true")
    setting = "false" if cluster.local_accounts_disabled is False else "not set"
    return failed(
        f"disableLocalAccounts is {setting}: a static cluster-admin kubeconfig exists",
        starts=[admin_credential(LOCAL_ADMIN_KUBECONFIG)],
    )


@check(
    id="aks.identity.workload_identity",
    title="Pods authenticate to Azure with Microsoft Entra Workload ID",
    severity=Severity.LOW,
    area=Area.AUTHENTICATION,
    maturity=Maturity.RUN,
    providers=AKS,
    rationale="Without workload identity (and its OIDC issuer), pods that call Azure use stored "
    "secrets or the nodes' managed identity, which every pod on the node can borrow.",
    remediation=_update(
        "Enable the OIDC issuer and workload identity.",
        "--enable-oidc-issuer --enable-workload-identity",
        "oidc_issuer_enabled = true and workload_identity_enabled = true",
    ),
    references=[f"{DOCS}/workload-identity-overview", f"{DOCS}/use-oidc-issuer"],
)
def workload_identity(cluster: AksCluster):
    if cluster.workload_identity and cluster.oidc_issuer:
        return passed("the OIDC issuer and workload identity are enabled")
    missing = [
        name
        for name, enabled in (
            ("oidcIssuerProfile", cluster.oidc_issuer),
            ("securityProfile.workloadIdentity", cluster.workload_identity),
        )
        if not enabled
    ]
    return failed(f"not enabled: {', '.join(missing)}")


@check(
    id="aks.rbac.enabled",
    title="Kubernetes RBAC is enabled",
    severity=Severity.CRITICAL,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.CRAWL,
    providers=AKS,
    rationale="Without Kubernetes RBAC nothing is authorized per identity: every user and every "
    "service account that authenticates may do everything, so one exploited pod is admin.",
    remediation={
        Provider.AKS: Remediation(
            summary="RBAC is set at creation and cannot be turned on later: re-create the "
            "cluster without `--disable-rbac` (RBAC is the default of `az aks create`).",
            terraform=f"{TERRAFORM} role_based_access_control_enabled = true",
        )
    },
    references=[
        f"{DOCS}/concepts-identity",
        "https://kubernetes.io/docs/reference/access-authn-authz/authorization/",
    ],
)
def rbac_enabled(cluster: AksCluster):
    if cluster.rbac_enabled is None:
        return unknown(
            "enableRbac is not reported",
            assumption="authorization: enableRbac not reported; assumed Kubernetes RBAC is on "
            "(the AKS default)",
        )
    if cluster.rbac_enabled:
        return passed("enableRbac is true")
    return failed(
        "enableRbac is false: every authenticated identity is authorized for everything",
        edges=[
            Edge(
                AUTHENTICATED,
                ADMIN,
                0,
                "authorization",
                "Kubernetes RBAC is disabled: any authenticated request is allowed",
            )
        ],
    )


@check(
    id="aks.access.standing_admins",
    title="No Entra identity is a standing cluster admin",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.RUN,
    providers=AKS,
    rationale="Members of the cluster's Entra admin groups are bound to cluster-admin: a leaked "
    "credential of any member is all an attacker needs. Grant admin just in time instead.",
    remediation=_update(
        "Make the admin group one whose membership is granted just in time with Privileged "
        "Identity Management.",
        "--aad-admin-group-object-ids GROUP_ID",
        "azure_active_directory_role_based_access_control { admin_group_object_ids = [...] }",
    ),
    references=[f"{DOCS}/managed-azure-ad", f"{DOCS}/manage-azure-rbac"],
)
def standing_admins(cluster: AksCluster):
    if not cluster.entra_id:
        return None  # no Entra identities: local accounts are judged by aks.auth.local_accounts
    outcomes = [
        failed(
            f"members of Entra group {group} are cluster-admin",
            f"entra-group:{group}",
            starts=[admin_credential(f"a member's credential of Entra group {group}")],
        )
        for group in cluster.admin_group_ids
    ]
    if cluster.azure_rbac:
        outcomes.append(
            unknown(
                "Azure RBAC authorizes Kubernetes requests too, and mutguard does not read Azure "
                "role assignments (e.g. Azure Kubernetes Service RBAC Cluster Admin)",
                assumption="credentials: Azure role assignments not read; Entra identities "
                "holding an Azure Kubernetes Service RBAC admin role are not counted",
                affects=[StartKind.CREDENTIAL],
            )
        )
    return outcomes or passed("no Entra admin groups are configured")


@check(
    id="aks.access.azure_rbac",
    title="Kubernetes authorization for Entra identities uses Azure RBAC",
    severity=Severity.LOW,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="With Azure RBAC for Kubernetes authorization, who may do what in the cluster is "
    "an Azure role assignment: listed, audited and revocable in one place, and grantable just "
    "in time.",
    remediation=_update(
        "Authorize Entra identities with Azure RBAC.",
        "--enable-azure-rbac",
        "azure_active_directory_role_based_access_control { azure_rbac_enabled = true }",
    ),
    references=[f"{DOCS}/manage-azure-rbac"],
)
def azure_rbac(cluster: AksCluster):
    if not cluster.entra_id:
        return None  # judged by aks.auth.entra_id
    if cluster.azure_rbac:
        return passed("aadProfile.enableAzureRbac is true")
    return failed("Entra identities are authorized only by Kubernetes RBAC bindings")


@check(
    id="aks.nodes.ssh",
    title="Nodes do not accept SSH",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="With an SSH key in linuxProfile and SSH enabled on the nodes, anyone holding the "
    "key and reaching a node (any pod can) is root there, outside Kubernetes' audit.",
    remediation={
        Provider.AKS: Remediation(
            summary="Disable SSH access on the cluster and on its node pools.",
            cli=_az_update("--ssh-access disabled")
            + "\naz aks nodepool update -g RG --cluster-name NAME -n POOL --ssh-access disabled",
            terraform=f"{TERRAFORM} without a linux_profile block",
        )
    },
    references=[f"{DOCS}/manage-ssh-node-access", REST],
)
def node_ssh(cluster: AksCluster):
    if not cluster.ssh_keys:
        return passed("linuxProfile holds no SSH public key")
    pools = cluster.node_pools_ssh
    if pools is None:
        return failed("linuxProfile holds an SSH key and node pools' SSH access is not reported")
    strange = [p for p in pools if p.ssh_access not in (None, SSH_DISABLED, SSH_LOCAL_USER)]
    if strange:
        values = ", ".join(f"{p.pool}: {p.ssh_access!r}" for p in strange)
        return unknown(f"unrecognised securityProfile.sshAccess ({values})")
    open_pools = [p.pool for p in pools if p.ssh_access != SSH_DISABLED]
    if open_pools:
        return failed(f"nodes accept the linuxProfile SSH key in pools {', '.join(open_pools)}")
    return passed("SSH is disabled on every Linux node pool")


@check(
    id="aks.identity.managed",
    title="The cluster uses a managed identity, not a service principal secret",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="A service principal's client secret is a long-lived credential that can leak "
    "and expires; a managed identity's credentials are issued and rotated by Azure.",
    remediation=_update(
        "Authenticate the cluster to Azure with a managed identity.",
        "--enable-managed-identity",
        'identity { type = "SystemAssigned" } instead of service_principal',
    ),
    references=[f"{DOCS}/use-managed-identity", REST],
)
def managed_identity(cluster: AksCluster):
    kind = cluster.identity_type
    if kind in MANAGED_IDENTITIES:
        return passed(f"identity.type is {kind}")
    if kind is not None and kind != "None":
        return unknown(f"unrecognised identity.type {kind!r}")
    if cluster.service_principal and cluster.service_principal != MSI_CLIENT_ID:
        return failed("the cluster authenticates to Azure with a service principal secret")
    return unknown("neither identity nor servicePrincipalProfile is reported")


@check(
    id="aks.secrets.kms",
    title="Secrets are encrypted with a Key Vault key (KMS)",
    severity=Severity.LOW,
    area=Area.DATA_PROTECTION,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="AKS encrypts etcd with platform keys; with KMS, reading secrets from storage "
    "also needs your Key Vault key, which you control, audit and can revoke.",
    remediation=_update(
        "Encrypt secrets with a Key Vault key (KMS), the vault reached privately.",
        "--enable-azure-keyvault-kms --azure-keyvault-kms-key-id KEY_ID "
        "--azure-keyvault-kms-key-vault-network-access Private "
        "--azure-keyvault-kms-key-vault-resource-id VAULT_ID",
        'key_management_service { key_vault_key_id = ..., key_vault_network_access = "Private" }',
    ),
    references=[f"{DOCS}/use-kms-etcd-encryption", REST],
)
def secrets_kms(cluster: AksCluster):
    if cluster.kms:
        access = cluster.kms_network_access or "not reported"
        return passed(f"Key Vault KMS encrypts secrets (key vault network access: {access})")
    return failed("securityProfile.azureKeyVaultKms is not enabled")


setting_check(
    id="aks.logging.defender",
    title="Microsoft Defender for Containers watches the cluster",
    severity=Severity.LOW,
    area=Area.LOGGING,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="The Defender sensor reports runtime threats and suspicious API activity; without "
    "it a compromise is noticed only if someone reads the logs.",
    remediation=_update(
        "Enable Microsoft Defender for Containers.",
        "--enable-defender",
        "microsoft_defender { log_analytics_workspace_id = ... }",
    ),
    references=[
        "https://learn.microsoft.com/en-us/azure/defender-for-cloud/tutorial-enable-containers-azure",
        REST,
    ],
    field="securityProfile.defender.securityMonitoring.enabled",
    read=lambda cluster: cluster.defender,
    verdicts=(
        ((True,), Status.PASS, "securityProfile.defender.securityMonitoring is enabled"),
        ((False,), Status.FAIL, "the Defender sensor is not enabled"),
    ),
)


setting_check(
    id="aks.admission.azure_policy",
    title="The Azure Policy add-on enforces workload guardrails",
    severity=Severity.MEDIUM,
    area=Area.WORKLOADS,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="The Azure Policy add-on (Gatekeeper) blocks privileged, host-mounting and "
    "otherwise unsafe pods at admission, so one bad manifest does not become a node takeover.",
    remediation={
        Provider.AKS: Remediation(
            summary="Enable the Azure Policy add-on.",
            cli="az aks enable-addons -g RG -n NAME --addons azure-policy",
            terraform=f"{TERRAFORM} azure_policy_enabled = true",
        )
    },
    references=[
        "https://learn.microsoft.com/en-us/azure/governance/policy/concepts/policy-for-kubernetes"
    ],
    field="addonProfiles.azurepolicy.enabled",
    read=lambda cluster: cluster.azure_policy,
    verdicts=(
        ((True,), Status.PASS, "addonProfiles.azurepolicy is enabled"),
        ((False,), Status.FAIL, "the Azure Policy add-on is not enabled"),
    ),
)


setting_check(
    id="aks.nodes.image_cleaner",
    title="Image Cleaner removes stale, vulnerable images from nodes",
    severity=Severity.LOW,
    area=Area.WORKLOADS,
    maturity=Maturity.RUN,
    providers=AKS,
    rationale="Images no pod uses stay on nodes with their vulnerabilities, ready to be run "
    "again by anyone who can create a pod there.",
    remediation=_update(
        "Enable Image Cleaner.", "--enable-image-cleaner", "image_cleaner_enabled = true"
    ),
    references=[f"{DOCS}/image-cleaner"],
    field="securityProfile.imageCleaner.enabled",
    read=lambda cluster: cluster.image_cleaner,
    verdicts=(
        ((True,), Status.PASS, "securityProfile.imageCleaner is enabled"),
        ((False,), Status.FAIL, "Image Cleaner is not enabled"),
    ),
)


@check(
    id="aks.version.supported",
    title="Kubernetes version still receives security patches",
    severity=Severity.HIGH,
    area=Area.LIFECYCLE,
    maturity=Maturity.CRAWL,
    providers=AKS,
    rationale="Past its end of life in AKS (or of long-term support, on that plan) a version "
    "gets no more security patches; AKS then upgrades it on its own schedule.",
    remediation={
        Provider.AKS: Remediation(
            summary="Upgrade to a supported version, or stay longer on long-term support.",
            cli=f"{UPGRADE}\n" + _az_update("--tier premium --k8s-support-plan AKSLongTermSupport"),
            terraform=f"{TERRAFORM} kubernetes_version (support_plan, sku_tier)",
        )
    },
    references=[f"{DOCS}/supported-kubernetes-versions", f"{DOCS}/long-term-support"],
)
def version_supported(cluster: AksCluster):
    lts = cluster.support_plan == LONG_TERM_SUPPORT
    end = support_ends(cluster, CALENDAR, "lts_end_of_life" if lts else "end_of_life")
    if not isinstance(end, date):
        return end
    support = "long-term support" if lts else "support"
    if cluster.observed_at.date() > end:
        return failed(f"AKS {cluster.version}: {support} ended on {end}")
    return passed(f"AKS {cluster.version} is in {support} until {end}")


setting_check(
    id="aks.lifecycle.auto_upgrade",
    title="Kubernetes patch versions are applied automatically",
    severity=Severity.MEDIUM,
    area=Area.LIFECYCLE,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="Without an auto-upgrade channel, Kubernetes patch releases (with their security "
    "fixes) reach the cluster only when someone remembers to upgrade it.",
    remediation=_update(
        "Let an auto-upgrade channel apply Kubernetes patch versions.",
        "--auto-upgrade-channel patch",
        'automatic_upgrade_channel = "patch"',
    ),
    references=[f"{DOCS}/auto-upgrade-cluster"],
    field="autoUpgradeProfile.upgradeChannel",
    read=lambda cluster: cluster.upgrade_channel,
    verdicts=(
        (VERSION_CHANNELS, Status.PASS, "autoUpgradeProfile.upgradeChannel is {value}"),
        (
            (NODE_IMAGE_CHANNEL,),
            Status.FAIL,
            "upgradeChannel node-image upgrades node images, not Kubernetes",
        ),
        (
            (None, NO_CHANNEL),
            Status.FAIL,
            "no auto-upgrade channel: Kubernetes is upgraded only by hand",
        ),
    ),
)


setting_check(
    id="aks.lifecycle.node_os_upgrade",
    title="Node OS security patches are applied automatically",
    severity=Severity.MEDIUM,
    area=Area.LIFECYCLE,
    maturity=Maturity.WALK,
    providers=AKS,
    rationale="Nodes run the workloads: without a node OS channel, kernel and package fixes wait "
    "for someone to upgrade node images by hand.",
    remediation=_update(
        "Let a node OS upgrade channel apply security patches.",
        "--node-os-upgrade-channel SecurityPatch",
        'node_os_upgrade_channel = "SecurityPatch"',
    ),
    references=[f"{DOCS}/auto-upgrade-node-os-image"],
    field="autoUpgradeProfile.nodeOsUpgradeChannel",
    read=lambda cluster: cluster.node_os_upgrade_channel,
    verdicts=(
        (NODE_OS_CHANNELS, Status.PASS, "autoUpgradeProfile.nodeOsUpgradeChannel is {value}"),
        (
            NODE_OS_MANUAL,
            Status.FAIL,
            "nodeOsUpgradeChannel is {value}: node OS patches are not automatic",
        ),
        ((None,), Status.UNKNOWN, "autoUpgradeProfile.nodeOsUpgradeChannel is not reported"),
    ),
)
