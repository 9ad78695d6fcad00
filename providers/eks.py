"""Amazon EKS: parse `aws eks describe-cluster` JSON and the EKS documents beside it.

Snapshot documents of an EKS cluster (live collection writes exactly these):
- cluster.json: `aws eks describe-cluster --output json`, i.e. {"cluster": {...}}
- access-entries.json: a JSON array, one element per access entry: the output of
  `aws eks describe-access-entry` merged with that of `aws eks list-associated-access-policies`
  ({"accessEntry": {...}, "associatedAccessPolicies": [...], ...}).
- identity-providers.json: a JSON array of `aws eks describe-identity-provider-config` outputs.
- aws-auth.json: `kubectl -n kube-system get configmap aws-auth -o json`, or a NotFound Status.

boto3 is imported only by the live collector (mutguard.providers.eks_live).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from pydantic.alias_generators import to_camel

from mutguard.cluster import Cluster, EndpointAccess, parse_common, parse_optional
from mutguard.errors import InputError
from mutguard.plugins import needs
from mutguard.sources import (
    ACCESS_ENTRIES_DOC,
    AWS_AUTH_DOC,
    CLUSTER_DOC,
    IDENTITY_PROVIDERS_DOC,
    ClusterSource,
    Provider,
)

# Access policies that are admin-equivalent at cluster scope (docs/architecture.md, MUT: read
# every secret, run privileged pods anywhere, or escalate), with what each grants; from the EKS
# access policy reference. The last three can also run pods as any service account of a
# namespace, so they are admin-equivalent in kube-system, whose controllers' service accounts can
# escalate.
ADMIN_EQUIVALENT_POLICIES = {
    "AmazonEKSClusterAdminPolicy": "cluster-admin",
    "AmazonEKSAdminPolicy": "admin (secrets, pods and RBAC)",
    "AmazonEKSEditPolicy": "edit (secrets and pods)",
    "AmazonEKSAdminViewPolicy": "reads every secret",
    "AmazonEKSSecretReaderPolicy": "reads every secret",
}
POD_CREATING_POLICIES = (
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
)


class _Raw(BaseModel):
    """The AWS JSON shape: camelCase, unknown fields from newer API versions ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _VpcConfig(_Raw):
    endpoint_public_access: StrictBool | None = None
    endpoint_private_access: StrictBool | None = None
    public_access_cidrs: list[str] | None = None


class _AccessConfig(_Raw):
    authentication_mode: str | None = None
    bootstrap_cluster_creator_admin_permissions: StrictBool | None = None


class _LogSetup(_Raw):
    types: list[str] = Field(default_factory=list)
    enabled: StrictBool | None = None


class _Logging(_Raw):
    cluster_logging: list[_LogSetup] = Field(default_factory=list)


class _KeyProvider(_Raw):
    key_arn: str | None = None


class _EncryptionConfig(_Raw):
    resources: list[str] = Field(default_factory=list)
    provider: _KeyProvider | None = None


class _Oidc(_Raw):
    issuer: str | None = None


class _Identity(_Raw):
    oidc: _Oidc | None = None


class _UpgradePolicy(_Raw):
    support_type: str | None = None


class _EksClusterDoc(_Raw):
    name: str
    arn: str | None = None
    version: str | None = None
    status: str | None = None
    platform_version: str | None = None
    resources_vpc_config: _VpcConfig | None = None
    access_config: _AccessConfig | None = None
    logging: _Logging | None = None
    encryption_config: list[_EncryptionConfig] | None = None
    identity: _Identity | None = None
    upgrade_policy: _UpgradePolicy | None = None


class _AccessScope(_Raw):
    type: str
    namespaces: list[str] = Field(default_factory=list)


class AccessPolicyAssociation(_Raw):
    policy_arn: str
    access_scope: _AccessScope

    @property
    def policy_name(self) -> str:
        return self.policy_arn.rsplit("/", 1)[-1]

    def admin_power(self) -> str | None:
        """What makes this association admin-equivalent, or None."""
        power = ADMIN_EQUIVALENT_POLICIES.get(self.policy_name)
        if power is None:
            return None
        if self.access_scope.type == "cluster":
            return f"{self.policy_name} at cluster scope: {power}"
        if self.policy_name in POD_CREATING_POLICIES and any(
            fnmatch.fnmatchcase("kube-system", ns) for ns in self.access_scope.namespaces
        ):
            return f"{self.policy_name} in kube-system: runs pods as its controllers"
        return None


class _AccessEntryDoc(_Raw):
    principal_arn: str
    type: str | None = None
    username: str | None = None
    kubernetes_groups: list[str] = Field(default_factory=list)


class AccessEntry(BaseModel):
    principal_arn: str
    type: str | None
    username: str | None
    kubernetes_groups: list[str]
    policies: list[AccessPolicyAssociation]


class OidcIdentityProvider(_Raw):
    identity_provider_config_name: str
    issuer_url: str | None = None
    client_id: str | None = None
    username_claim: str | None = None
    username_prefix: str | None = None
    groups_claim: str | None = None
    groups_prefix: str | None = None
    required_claims: dict[str, str] = Field(default_factory=dict)
    status: str | None = None


class AwsAuthMapping(BaseModel):
    """One entry of the aws-auth ConfigMap's mapRoles or mapUsers."""

    principal_arn: str
    username: str | None
    groups: list[str]


class EksCluster(Cluster):
    status: str | None = None
    platform_version: str | None = None
    authentication_mode: str | None = None
    bootstrap_admin: bool | None = None
    secrets_key_arn: str | None = None
    enabled_log_types: frozenset[str] = frozenset()
    oidc_issuer: str | None = None
    support_type: str | None = None
    access_entries: list[AccessEntry] | None = None
    identity_providers: list[OidcIdentityProvider] | None = None
    aws_auth: list[AwsAuthMapping] | None = None  # [] when the ConfigMap does not exist


def _describe_error(document: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    return f"{document}: {problems}"


def parse(source: ClusterSource, observed_at: Any) -> EksCluster:
    """Build an EksCluster from the documents; raises InputError naming what is malformed."""
    doc = _cluster_doc(source)
    region, account = source.location, source.account
    if doc.arn and doc.arn.startswith("arn:"):
        parts = doc.arn.split(":")
        if len(parts) >= 5:
            region, account = parts[3] or region, parts[4] or account
    access = doc.access_config
    errors = dict(source.errors)
    return EksCluster(
        provider=Provider.EKS,
        name=doc.name,
        location=region,
        account=account,
        arn_or_id=doc.arn or doc.name,
        version=doc.version,
        observed_at=observed_at,
        endpoint=_endpoint(doc.resources_vpc_config),
        status=doc.status,
        platform_version=doc.platform_version,
        authentication_mode=access.authentication_mode if access else None,
        bootstrap_admin=access.bootstrap_cluster_creator_admin_permissions if access else None,
        secrets_key_arn=_secrets_key(doc),
        enabled_log_types=frozenset(
            log_type
            for setup in (doc.logging.cluster_logging if doc.logging else ())
            if setup.enabled
            for log_type in setup.types
        ),
        oidc_issuer=doc.identity.oidc.issuer if doc.identity and doc.identity.oidc else None,
        support_type=doc.upgrade_policy.support_type if doc.upgrade_policy else None,
        access_entries=parse_optional(source, errors, ACCESS_ENTRIES_DOC, _parse_access_entries),
        identity_providers=parse_optional(
            source, errors, IDENTITY_PROVIDERS_DOC, _parse_identity_providers
        ),
        aws_auth=parse_optional(source, errors, AWS_AUTH_DOC, _parse_aws_auth),
        **parse_common(source, errors),
    )


def _cluster_doc(source: ClusterSource) -> _EksClusterDoc:
    document = source.documents.get(CLUSTER_DOC)
    if not isinstance(document, dict) or not isinstance(document.get("cluster"), dict):
        raise InputError(
            f"{CLUSTER_DOC}: expected `aws eks describe-cluster` output {{'cluster': …}}"
        )
    try:
        return _EksClusterDoc.model_validate(document["cluster"])
    except ValidationError as exc:
        raise InputError(_describe_error(CLUSTER_DOC, exc)) from exc


def _endpoint(vpc: _VpcConfig | None) -> EndpointAccess | None:
    if vpc is None or vpc.endpoint_public_access is None:
        return None
    public = vpc.endpoint_public_access
    return EndpointAccess(
        public=public,
        private=bool(vpc.endpoint_private_access),
        # EKS reports 0.0.0.0/0 when public access has no allow-list.
        public_cidrs=(vpc.public_access_cidrs or ["0.0.0.0/0"]) if public else [],
    )


def _secrets_key(doc: _EksClusterDoc) -> str | None:
    """The KMS key that envelope-encrypts secrets (the last encryption config naming them)."""
    key = None
    for config in doc.encryption_config or ():
        if "secrets" in config.resources and config.provider and config.provider.key_arn:
            key = config.provider.key_arn
    return key


def _parse_access_entries(document: Any) -> list[AccessEntry]:
    if not isinstance(document, list):
        raise InputError(f"{ACCESS_ENTRIES_DOC}: expected a JSON array of access entries")
    entries = []
    for index, item in enumerate(document):
        if not isinstance(item, dict) or not isinstance(item.get("accessEntry"), dict):
            raise InputError(f"{ACCESS_ENTRIES_DOC}[{index}]: expected {{'accessEntry': …}}")
        try:
            entry = _AccessEntryDoc.model_validate(item["accessEntry"])
            policies = [
                AccessPolicyAssociation.model_validate(p)
                for p in item.get("associatedAccessPolicies") or []
            ]
        except ValidationError as exc:
            raise InputError(_describe_error(f"{ACCESS_ENTRIES_DOC}[{index}]", exc)) from exc
        entries.append(
            AccessEntry(
                principal_arn=entry.principal_arn,
                type=entry.type,
                username=entry.username,
                kubernetes_groups=entry.kubernetes_groups,
                policies=policies,
            )
        )
    return entries


def _parse_identity_providers(document: Any) -> list[OidcIdentityProvider]:
    if not isinstance(document, list):
        raise InputError(f"{IDENTITY_PROVIDERS_DOC}: expected a JSON array of provider configs")
    providers = []
    for index, item in enumerate(document):
        oidc = (
            (item.get("identityProviderConfig") or {}).get("oidc")
            if isinstance(item, dict)
            else None
        )
        if not isinstance(oidc, dict):
            expected = "{'identityProviderConfig': {'oidc': …}}"
            raise InputError(f"{IDENTITY_PROVIDERS_DOC}[{index}]: expected {expected}")
        try:
            providers.append(OidcIdentityProvider.model_validate(oidc))
        except ValidationError as exc:
            raise InputError(_describe_error(f"{IDENTITY_PROVIDERS_DOC}[{index}]", exc)) from exc
    return providers


def looks_like(document: Any) -> bool:
    """Whether a cluster.json is `aws eks describe-cluster` output."""
    cluster = document.get("cluster") if isinstance(document, dict) else None
    return isinstance(cluster, dict) and str(cluster.get("arn", "")).startswith("arn:aws")


def _parse_aws_auth(document: Any) -> list[AwsAuthMapping]:
    """The mappings of `kubectl -n kube-system get configmap aws-auth -o json`; a NotFound
    Status (no ConfigMap) means no mappings."""
    if isinstance(document, dict) and document.get("kind") == "Status":
        if document.get("reason") == "NotFound":
            return []
        raise InputError(f"{AWS_AUTH_DOC}: the API server answered {document.get('reason')}")
    if not isinstance(document, dict) or document.get("kind") != "ConfigMap":
        raise InputError(f"{AWS_AUTH_DOC}: expected the aws-auth ConfigMap")
    with needs(f"{AWS_AUTH_DOC}: reading it", "kube", "PyYAML"):
        import yaml
    data = document.get("data") or {}
    mappings = []
    for key, arn_field in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
        try:
            entries = yaml.safe_load(data.get(key) or "[]") or []
        except yaml.YAMLError:
            raise InputError(f"{AWS_AUTH_DOC}: {key} is not valid YAML") from None
        if not isinstance(entries, list):
            raise InputError(f"{AWS_AUTH_DOC}: {key} must be a list")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get(arn_field), str):
                raise InputError(f"{AWS_AUTH_DOC}: {key}[{index}] has no {arn_field}")
            groups = entry.get("groups") or []
            mappings.append(
                AwsAuthMapping(
                    principal_arn=entry[arn_field],
                    username=entry.get("username"),
                    groups=[str(g) for g in groups] if isinstance(groups, list) else [],
                )
            )
    return mappings
