"""Amazon EKS control-plane checks."""

from __future__ import annotations

from datetime import date

from mutguard.checks import check, failed, passed, unknown
from mutguard.checks.common import allow_list_judgement, probed_anonymous, support_ends
from mutguard.models import Area, Maturity, Provider, Remediation, Severity
from mutguard.mut import ANONYMOUS, API, Edge, StartKind, admin_credential
from mutguard.providers.eks import EksCluster

EKS = (Provider.EKS,)
DOCS = "https://docs.aws.amazon.com/eks/latest/userguide"
CALENDAR = "eks_versions.json"  # mutguard/data/: the support calendar, with its sources

# From this version EKS restricts anonymous requests to /healthz, /livez and /readyz.
ANONYMOUS_RESTRICTED_FROM = (1, 32)
KNOWN_AUTH_MODES = ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP")
AUDIT_LOG_TYPES = ("audit", "authenticator")


def _update_config(settings: str) -> str:
    return f"aws eks update-cluster-config --name NAME {settings}"


def _update_version(version: str) -> str:
    return f"aws eks update-cluster-version --name NAME --kubernetes-version {version}"


@check(
    id="eks.endpoint.public_unrestricted",
    title="API endpoint is not open to the whole internet",
    severity=Severity.CRITICAL,
    area=Area.NETWORK,
    maturity=Maturity.CRAWL,
    providers=EKS,
    rationale="A public endpoint allowing 0.0.0.0/0 (or a range anyone can rent into) removes the "
    "network barrier: every credential leak or RBAC mistake is then exploitable from anywhere.",
    remediation={
        Provider.EKS: Remediation(
            summary="Restrict public access to your ranges, or disable it and keep private access.",
            cli=_update_config(
                "--resources-vpc-config endpointPublicAccess=true,publicAccessCidrs=203.0.113.0/24"
            )
            + "\n"
            + _update_config(
                "--resources-vpc-config endpointPublicAccess=false,endpointPrivateAccess=true"
            ),
            terraform="aws_eks_cluster vpc_config.public_access_cidrs / "
            "vpc_config.endpoint_public_access",
        )
    },
    references=[f"{DOCS}/cluster-endpoint.html", f"{DOCS}/config-cluster-endpoint.html"],
)
def endpoint_public_unrestricted(cluster: EksCluster):
    if cluster.endpoint is None:
        return unknown(
            "resourcesVpcConfig.endpointPublicAccess is not reported",
            assumption="network: endpoint access not reported; assumed not open to the internet",
        )
    if not cluster.endpoint.public:
        return passed("public endpoint access is disabled")
    judged = allow_list_judgement(
        "publicAccessCidrs", cluster.endpoint.public_cidrs, "the public endpoint"
    )
    if judged is not None:
        return judged
    return passed(f"public access limited to {', '.join(cluster.endpoint.public_cidrs)}")


@check(
    id="eks.endpoint.private_access",
    title="Private endpoint access is enabled",
    severity=Severity.LOW,
    area=Area.NETWORK,
    maturity=Maturity.WALK,
    providers=EKS,
    rationale="Without private access, nodes and in-VPC tools reach the API server through its "
    "public endpoint, which must then stay open to them.",
    remediation={
        Provider.EKS: Remediation(
            summary="Enable private endpoint access.",
            cli=_update_config("--resources-vpc-config endpointPrivateAccess=true"),
            terraform="aws_eks_cluster vpc_config.endpoint_private_access",
        )
    },
    references=[f"{DOCS}/cluster-endpoint.html", f"{DOCS}/config-cluster-endpoint.html"],
)
def endpoint_private_access(cluster: EksCluster):
    if cluster.endpoint is None:
        return unknown("resourcesVpcConfig.endpointPrivateAccess is not reported")
    if cluster.endpoint.private:
        return passed("private endpoint access is enabled")
    return failed("private endpoint access is disabled: all API traffic uses the public endpoint")


@check(
    id="eks.endpoint.private_only",
    title="API endpoint is private only",
    severity=Severity.MEDIUM,
    area=Area.NETWORK,
    maturity=Maturity.RUN,
    providers=EKS,
    rationale="An endpoint that is not on the internet at all needs an attacker to get into the "
    "VPC first; an allow-list needs only one address inside it.",
    remediation={
        Provider.EKS: Remediation(
            summary="Disable public endpoint access and keep private access.",
            cli=_update_config(
                "--resources-vpc-config endpointPublicAccess=false,endpointPrivateAccess=true"
            ),
            terraform="aws_eks_cluster vpc_config.endpoint_public_access = false",
        )
    },
    references=[f"{DOCS}/cluster-endpoint.html", f"{DOCS}/config-cluster-endpoint.html"],
)
def endpoint_private_only(cluster: EksCluster):
    if cluster.endpoint is None:
        return unknown("resourcesVpcConfig.endpointPublicAccess is not reported")
    if cluster.endpoint.public:
        return failed(f"public endpoint allows {', '.join(cluster.endpoint.public_cidrs)}")
    return passed("the endpoint is reachable only from inside the VPC")


@check(
    id="eks.auth.anonymous",
    title="Anonymous requests are not authenticated",
    severity=Severity.HIGH,
    area=Area.AUTHENTICATION,
    maturity=Maturity.CRAWL,
    providers=EKS,
    rationale="With anonymous authentication, anyone who reaches the endpoint acts as "
    "system:anonymous: a single RBAC grant to system:unauthenticated then hands them the cluster.",
    remediation={
        Provider.EKS: Remediation(
            summary="Upgrade to Kubernetes 1.32 or later, where EKS limits anonymous requests to "
            "/healthz, /livez and /readyz; until then, keep RBAC free of grants to "
            "system:anonymous and system:unauthenticated.",
            cli=_update_version("1.32"),
            terraform="aws_eks_cluster version",
        )
    },
    references=[
        f"{DOCS}/kubernetes-versions-standard.html#kubernetes-1-32",
        "https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-requests",
    ],
)
def anonymous_auth(cluster: EksCluster):
    if (probed := probed_anonymous(cluster)) is not None:
        return probed
    minor = cluster.minor_version()
    if minor is None:
        return unknown(
            f"version {cluster.version!r} is not readable and the endpoint was not probed",
            assumption="authentication: anonymous access not known; assumed off",
        )
    if minor < ANONYMOUS_RESTRICTED_FROM:
        return failed(
            f"EKS {cluster.version} authenticates anonymous requests (restricted from 1.32 on)",
            edges=[
                Edge(
                    API,
                    ANONYMOUS,
                    0,
                    "authentication",
                    f"EKS {cluster.version} authenticates anonymous requests as system:anonymous",
                )
            ],
        )
    return passed(f"EKS {cluster.version} allows anonymous requests to health endpoints only")


def _authentication_mode(cluster: EksCluster):
    """The authentication mode, or the UNKNOWN outcome saying why it cannot be judged."""
    mode = cluster.authentication_mode
    if mode is None:
        return unknown("accessConfig.authenticationMode is not reported")
    if mode not in KNOWN_AUTH_MODES:
        return unknown(f"unrecognised accessConfig.authenticationMode {mode!r}")
    return mode


@check(
    id="eks.auth.access_entries",
    title="Cluster access is managed with access entries, not only the aws-auth ConfigMap",
    severity=Severity.MEDIUM,
    area=Area.AUTHENTICATION,
    maturity=Maturity.WALK,
    providers=EKS,
    rationale="In CONFIG_MAP mode who is admin lives in a ConfigMap that AWS APIs cannot see or "
    "audit, and one bad edit can map anyone to system:masters or lock every admin out.",
    remediation={
        Provider.EKS: Remediation(
            summary="Switch authenticationMode to API_AND_CONFIG_MAP, then migrate aws-auth "
            "entries to access entries.",
            cli=_update_config("--access-config authenticationMode=API_AND_CONFIG_MAP"),
            terraform="aws_eks_cluster access_config.authentication_mode",
        )
    },
    references=[f"{DOCS}/access-entries.html", f"{DOCS}/setting-up-access-entries.html"],
)
def access_entries_mode(cluster: EksCluster):
    mode = _authentication_mode(cluster)
    if not isinstance(mode, str):
        return mode
    if mode == "CONFIG_MAP":
        return failed("authenticationMode is CONFIG_MAP: access is defined only in aws-auth")
    return passed(f"authenticationMode is {mode}")


@check(
    id="eks.auth.api_only",
    title="Cluster access is managed only with access entries",
    severity=Severity.LOW,
    area=Area.AUTHENTICATION,
    maturity=Maturity.RUN,
    providers=EKS,
    rationale="While the aws-auth ConfigMap is still honoured, anyone who can edit it in "
    "kube-system can grant access that no AWS API shows.",
    remediation={
        Provider.EKS: Remediation(
            summary="After migrating aws-auth entries, switch authenticationMode to API (one-way).",
            cli=_update_config("--access-config authenticationMode=API"),
            terraform='aws_eks_cluster access_config.authentication_mode = "API"',
        )
    },
    references=[f"{DOCS}/setting-up-access-entries.html"],
)
def api_only_mode(cluster: EksCluster):
    mode = _authentication_mode(cluster)
    if not isinstance(mode, str):
        return mode
    if mode == "API":
        return passed("authenticationMode is API")
    return failed(f"authenticationMode is {mode}: the aws-auth ConfigMap is still honoured")


@check(
    id="eks.auth.oidc_prefixes",
    title="OIDC identity providers prefix the users and groups they assert",
    severity=Severity.MEDIUM,
    area=Area.AUTHENTICATION,
    maturity=Maturity.WALK,
    providers=EKS,
    rationale="Without a prefix, a username or group claim from the identity provider lands "
    "unchanged in Kubernetes, where it can collide with names RBAC already trusts.",
    remediation={
        Provider.EKS: Remediation(
            summary="Re-create the identity provider config with user and group prefixes.",
            cli="aws eks associate-identity-provider-config --cluster-name NAME --oidc "
            "identityProviderConfigName=N,issuerUrl=U,clientId=C,usernamePrefix=oidc:,"
            "groupsClaim=groups,groupsPrefix=oidc:",
            terraform="aws_eks_identity_provider_config oidc.username_prefix / oidc.groups_prefix",
        )
    },
    references=[f"{DOCS}/authenticate-oidc-identity-provider.html"],
)
def oidc_prefixes(cluster: EksCluster):
    if cluster.identity_providers is None:
        return unknown(cluster.missing("identity-providers.json"))
    if not cluster.identity_providers:
        return passed("no OIDC identity provider is associated")
    outcomes = []
    for idp in cluster.identity_providers:
        missing = []
        if not idp.username_prefix:
            missing.append("usernamePrefix")
        if idp.groups_claim and not idp.groups_prefix:
            missing.append("groupsPrefix")
        resource = f"oidc:{idp.identity_provider_config_name}"
        if missing:
            outcomes.append(failed(f"{resource} has no {' or '.join(missing)}", resource))
        else:
            outcomes.append(passed(f"{resource} prefixes its claims", resource))
    return outcomes


@check(
    id="eks.access.aws_auth_masters",
    title="The aws-auth ConfigMap maps nobody to system:masters",
    severity=Severity.HIGH,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=EKS,
    rationale="A role or user mapped to system:masters in aws-auth is cluster-admin that no RBAC "
    "binding shows and no access-entry API lists: one leaked credential of it is the cluster.",
    remediation={
        Provider.EKS: Remediation(
            summary="Replace the mapping with an access entry scoped to what the principal "
            "needs, then remove it from the aws-auth ConfigMap and move to authenticationMode "
            "API.",
            cli="aws eks create-access-entry --cluster-name NAME --principal-arn ARN\n"
            "aws eks associate-access-policy --cluster-name NAME --principal-arn ARN "
            "--policy-arn POLICY --access-scope type=namespace,namespaces=NAMESPACE\n"
            "kubectl -n kube-system edit configmap aws-auth",
            terraform="aws_eks_access_entry / aws_eks_access_policy_association",
        )
    },
    references=[f"{DOCS}/auth-configmap.html", f"{DOCS}/access-entries.html"],
)
def aws_auth_masters(cluster: EksCluster):
    if cluster.authentication_mode == "API":
        return None  # the ConfigMap is not read by the authenticator in API mode
    if cluster.aws_auth is None:
        return unknown(
            cluster.missing("aws-auth.json"),
            assumption="credentials: aws-auth not read; system:masters mappings not counted",
            affects=[StartKind.CREDENTIAL],
        )
    outcomes = [
        failed(
            f"aws-auth maps {m.principal_arn} to system:masters",
            m.principal_arn,
            starts=[admin_credential(f"{m.principal_arn} (system:masters in aws-auth)")],
        )
        for m in cluster.aws_auth
        if "system:masters" in m.groups
    ]
    return outcomes or passed(
        f"none of {len(cluster.aws_auth)} aws-auth mappings is system:masters"
    )


@check(
    id="eks.access.bootstrap_creator_admin",
    title="The cluster creator was not made a permanent admin",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=EKS,
    rationale="The principal that created the cluster (often a CI role or a person) keeps "
    "cluster-admin on its own: a leak of that credential is a leak of the cluster.",
    remediation={
        Provider.EKS: Remediation(
            summary="Create clusters with `--access-config "
            "bootstrapClusterCreatorAdminPermissions=false`; for an existing cluster, move to "
            "API_AND_CONFIG_MAP and delete the creator's access entry.",
            cli="aws eks delete-access-entry --cluster-name NAME --principal-arn ARN",
            terraform="aws_eks_cluster access_config.bootstrap_cluster_creator_admin_permissions "
            "= false",
        )
    },
    references=[f"{DOCS}/access-entries.html"],
)
def bootstrap_creator_admin(cluster: EksCluster):
    if cluster.authentication_mode == "CONFIG_MAP":
        return failed(
            "in CONFIG_MAP mode the creator holds system:masters that no API shows",
            starts=[admin_credential("the cluster creator's credential (hidden system:masters)")],
        )
    if cluster.bootstrap_admin is None:
        return unknown("accessConfig.bootstrapClusterCreatorAdminPermissions is not reported")
    if not cluster.bootstrap_admin:
        return passed("the creator was not given admin permissions")
    if cluster.access_entries is not None:
        return None  # the creator's admin is an access entry, judged by eks.access.admin_policy
    return failed(
        "the creator was given admin permissions at creation",
        starts=[admin_credential("the cluster creator's credential")],
    )


@check(
    id="eks.access.admin_policy",
    title="No principal holds a standing admin-equivalent access policy",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.RUN,
    providers=EKS,
    rationale="A principal with AmazonEKSClusterAdminPolicy, or with Admin, Edit, AdminView or "
    "SecretReader at cluster scope, is admin on its own: one leaked credential of it is all an "
    "attacker needs.",
    remediation={
        Provider.EKS: Remediation(
            summary="Grant admin just in time, or scope it to namespaces other than "
            "kube-system: disassociate the access policy, or delete the access entry.",
            cli="aws eks disassociate-access-policy --cluster-name NAME --principal-arn ARN "
            "--policy-arn POLICY\n"
            "aws eks delete-access-entry --cluster-name NAME --principal-arn ARN",
            terraform='aws_eks_access_policy_association access_scope { type = "namespace" }',
        )
    },
    references=[
        f"{DOCS}/access-policy-permissions.html",
        f"{DOCS}/access-policies.html",
        f"{DOCS}/deleting-access-entries.html",
    ],
)
def admin_access_policy(cluster: EksCluster):
    if cluster.authentication_mode == "CONFIG_MAP":
        return None
    if cluster.access_entries is None:
        return unknown(
            cluster.missing("access-entries.json"),
            assumption="credentials: access entries not read; admin access entries not counted",
            affects=[StartKind.CREDENTIAL],
        )
    outcomes = []
    for entry in cluster.access_entries:
        powers = [power for p in entry.policies if (power := p.admin_power())]
        if powers:
            what = f"{entry.principal_arn} ({'; '.join(powers)})"
            outcomes.append(
                failed(
                    f"{entry.principal_arn} holds {'; '.join(powers)}",
                    entry.principal_arn,
                    starts=[admin_credential(what)],
                )
            )
    if not outcomes:
        return passed(f"none of {len(cluster.access_entries)} access entries is admin-equivalent")
    return outcomes


@check(
    id="eks.secrets.kms_encryption",
    title="Secrets are envelope-encrypted with a customer-managed KMS key",
    severity=Severity.LOW,
    area=Area.DATA_PROTECTION,
    maturity=Maturity.WALK,
    providers=EKS,
    rationale="From 1.28 EKS encrypts all API data with an AWS-owned key; with your own KMS key, "
    "reading secrets from storage also needs kms:Decrypt, which you control, audit in CloudTrail "
    "and can revoke.",
    remediation={
        Provider.EKS: Remediation(
            summary="Envelope-encrypt secrets with a customer-managed KMS key.",
            cli="aws eks associate-encryption-config --cluster-name NAME "
            '--encryption-config \'[{"resources":["secrets"],"provider":{"keyArn":"KEY"}}]\'',
            terraform='aws_eks_cluster encryption_config { resources = ["secrets"] }',
        )
    },
    references=[f"{DOCS}/envelope-encryption.html", f"{DOCS}/enable-kms.html"],
)
def secrets_kms_encryption(cluster: EksCluster):
    if cluster.secrets_key_arn:
        return passed(f"secrets are encrypted with {cluster.secrets_key_arn}")
    return failed("no encryptionConfig covers secrets")


@check(
    id="eks.logging.audit",
    title="Audit and authenticator logs are sent to CloudWatch",
    severity=Severity.MEDIUM,
    area=Area.LOGGING,
    maturity=Maturity.CRAWL,
    providers=EKS,
    rationale="Without audit and authenticator logs, nobody can tell who used a leaked credential "
    "or which binding was changed, before or after an incident.",
    remediation={
        Provider.EKS: Remediation(
            summary="Send the audit and authenticator logs to CloudWatch.",
            cli=_update_config(
                '--logging \'{"clusterLogging":[{"types":["audit","authenticator"],'
                '"enabled":true}]}\''
            ),
            terraform='aws_eks_cluster enabled_cluster_log_types = ["audit", "authenticator"]',
        )
    },
    references=[f"{DOCS}/control-plane-logs.html"],
)
def audit_logging(cluster: EksCluster):
    missing = [t for t in AUDIT_LOG_TYPES if t not in cluster.enabled_log_types]
    if missing:
        return failed(f"control-plane log types not enabled: {', '.join(missing)}")
    return passed("audit and authenticator logs are enabled")


@check(
    id="eks.version.supported",
    title="Kubernetes version still receives security patches",
    severity=Severity.HIGH,
    area=Area.LIFECYCLE,
    maturity=Maturity.CRAWL,
    providers=EKS,
    rationale="Past the end of extended support a version gets no more fixes, and EKS upgrades "
    "the control plane automatically on its own schedule.",
    remediation={
        Provider.EKS: Remediation(
            summary="Upgrade to a supported Kubernetes version, one minor version at a time.",
            cli=_update_version("X.Y"),
            terraform="aws_eks_cluster version",
        )
    },
    references=[f"{DOCS}/kubernetes-versions.html", f"{DOCS}/update-cluster.html"],
)
def version_supported(cluster: EksCluster):
    end = support_ends(cluster, CALENDAR, "end_of_extended_support")
    if not isinstance(end, date):
        return end
    if cluster.observed_at.date() > end:
        return failed(f"EKS {cluster.version}: extended support ended on {end}")
    return passed(f"EKS {cluster.version} is supported until {end}")


@check(
    id="eks.version.standard_support",
    title="Kubernetes version is in standard support",
    severity=Severity.MEDIUM,
    area=Area.LIFECYCLE,
    maturity=Maturity.WALK,
    providers=EKS,
    rationale="Extended support costs extra per cluster-hour and is a deadline, not a plan: "
    "clusters that live there upgrade in a hurry.",
    remediation={
        Provider.EKS: Remediation(
            summary="Upgrade to a Kubernetes version in standard support.",
            cli=_update_version("X.Y"),
            terraform="aws_eks_cluster version",
        )
    },
    references=[f"{DOCS}/kubernetes-versions.html", f"{DOCS}/update-cluster.html"],
)
def version_standard_support(cluster: EksCluster):
    end = support_ends(cluster, CALENDAR, "end_of_standard_support")
    if not isinstance(end, date):
        return end
    if cluster.observed_at.date() > end:
        return failed(f"EKS {cluster.version}: standard support ended on {end}")
    return passed(f"EKS {cluster.version} is in standard support until {end}")
