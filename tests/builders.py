"""Tiny, real-looking inputs for tests: `aws eks describe-cluster` output and kubectl Lists."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mutguard.models import (
    Area,
    CheckSummary,
    ClusterReport,
    Finding,
    Maturity,
    Remediation,
    Severity,
    Status,
)
from mutguard.scan import evaluate
from mutguard.sources import ClusterSource, Provider

FIXTURES = Path(__file__).parent / "fixtures"
BOOTSTRAP_RBAC = FIXTURES / "kubernetes-bootstrap-rbac"
FIX_IT = Remediation(summary="fix it")  # a made-up check's remediation (new_finding)
# The bundled demo clusters (mutguard/demo), each of which fails at least one check: on a first
# run, with no state, every one of them has news to publish.
NEWS_CLUSTERS = [
    "data-platform",
    "orders-aks",
    "payments-legacy",
    "platform-core",
    "shop-prod",
    "shop-staging",
]
OBSERVED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def describe_cluster(
    name: str = "prod",
    *,
    version: str = "1.34",
    public: bool = True,
    private: bool = False,
    cidrs: list[str] | None = None,
    mode: str | None = "API",
    bootstrap_admin: bool | None = False,
    secrets_key: str | None = None,
    log_types: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`aws eks describe-cluster --output json` for one cluster, as the CLI prints it."""
    cluster: dict[str, Any] = {
        "name": name,
        "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}",
        "createdAt": "2025-01-01T10:00:00.000000+00:00",
        "version": version,
        "endpoint": f"https://EXAMPLE.gr7.{REGION}.eks.amazonaws.com",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
        "resourcesVpcConfig": {
            "subnetIds": ["subnet-0123456789abcdef0"],
            "securityGroupIds": [],
            "vpcId": "vpc-0123456789abcdef0",
            "endpointPublicAccess": public,
            "endpointPrivateAccess": private,
            "publicAccessCidrs": cidrs if cidrs is not None else (["0.0.0.0/0"] if public else []),
        },
        "logging": {"clusterLogging": [{"types": list(log_types), "enabled": True}]},
        "identity": {"oidc": {"issuer": f"https://oidc.eks.{REGION}.amazonaws.com/id/EXAMPLE"}},
        "status": "ACTIVE",
        "platformVersion": "eks.5",
    }
    if mode is not None:
        cluster["accessConfig"] = {
            "authenticationMode": mode,
            "bootstrapClusterCreatorAdminPermissions": bootstrap_admin,
        }
    if secrets_key:
        cluster["encryptionConfig"] = [
            {"resources": ["secrets"], "provider": {"keyArn": secrets_key}}
        ]
    return {"cluster": cluster}


@cache
def bootstrap_items(featuregates: bool = False) -> tuple[dict, ...]:
    """The Kubernetes bootstrap RBAC policy (roles and bindings of a new cluster)."""
    items: list[dict] = []
    for path in sorted(BOOTSTRAP_RBAC.glob("*.yaml")):
        if path.stem.endswith("-featuregates") == featuregates:
            items += yaml.safe_load(path.read_text())["items"]
    return tuple(items)


def rbac_list(*extra: dict, bootstrap: bool = True) -> dict[str, Any]:
    """`kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o json`."""
    items = [copy.deepcopy(i) for i in bootstrap_items()] if bootstrap else []
    return {"apiVersion": "v1", "kind": "List", "items": items + list(extra)}


def cluster_role_binding(name: str, role: str, *subjects: tuple[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}
            for kind, subject in subjects
        ],
    }


def cluster_role(
    name: str, *rules: dict, labels: dict | None = None, aggregate: list | None = None
):
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels or {}},
        "rules": list(rules),
    }
    if aggregate is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": aggregate}
        role["rules"] = None
    return role


def access_entry(principal: str, *policies: tuple[str, str]) -> dict[str, Any]:
    """describe-access-entry merged with list-associated-access-policies for one principal."""
    return {
        "accessEntry": {
            "clusterName": "prod",
            "principalArn": principal,
            "kubernetesGroups": [],
            "type": "STANDARD",
            "username": principal,
        },
        "associatedAccessPolicies": [
            {
                "policyArn": f"arn:aws:eks::aws:cluster-access-policy/{policy}",
                "accessScope": {"type": scope, "namespaces": [] if scope == "cluster" else ["app"]},
            }
            for policy, scope in policies
        ],
    }


def source(cluster_json: dict, **documents: Any) -> ClusterSource:
    """A ClusterSource; keyword names map to files: rbac -> rbac.json, access_entries -> ..."""
    docs = {"cluster.json": cluster_json}
    # A scan uses up its source's documents (scan.evaluate); a test may scan the same ones again.
    docs.update(
        {f"{key.replace('_', '-')}.json": copy.deepcopy(value) for key, value in documents.items()}
    )
    return ClusterSource(Provider.EKS, cluster_json["cluster"]["name"], documents=docs)


def assess(cluster_json: dict, **documents: Any) -> ClusterReport:
    return evaluate(source(cluster_json, **documents), OBSERVED_AT)


def finding(report: ClusterReport, check_id: str, resource: str | None = None):
    matches = [
        f
        for f in report.findings
        if f.check_id == check_id and (resource is None or f.resource == resource)
    ]
    assert len(matches) == 1, f"{check_id}: {matches}"
    return matches[0]


def new_finding(
    check_id: str,
    status: Status,
    resource: str,
    detail: str,
    *,
    provider: Provider = Provider.EKS,
    severity: Severity = Severity.HIGH,
    title: str | None = None,
    area: Area = Area.WORKLOADS,
    remediation: Remediation = FIX_IT,
    mut_gain: int | None = None,
    mut_gain_from: tuple[str, ...] = (),
) -> Finding:
    """A finding of a check made up for the test."""
    check = CheckSummary(
        title=title or f"title of {check_id}",
        severity=severity,
        area=area,
        maturity=Maturity.CRAWL,
        remediation={provider: remediation},
    )
    return Finding(
        check_id=check_id,
        status=status,
        resource=resource,
        detail=detail,
        mut_gain=mut_gain,
        mut_gain_from=list(mut_gain_from),
        check=check,
        provider=provider,
    )


def varied(
    template: Finding,
    check_id: str | None = None,
    *,
    severity: Severity | None = None,
    title: str | None = None,
    remediation: Remediation | None = None,
    **fields: Any,
) -> Finding:
    """`template` changed: as a finding of another check (`check_id`), its check's summary with
    another severity, title or remediation, and `fields` (resource, detail...) replaced."""
    changed = {"severity": severity, "title": title}
    if remediation is not None:
        changed["remediation"] = {template.provider: remediation}
    check = template.check.model_copy(update={k: v for k, v in changed.items() if v is not None})
    check_id = check_id or template.check_id
    return template.model_copy(update={"check_id": check_id, "check": check, **fields})


def pod(
    name: str,
    namespace: str = "shop",
    *,
    service_account: str = "default",
    node: str | None = "ip-10-0-1-17.eu-west-1.compute.internal",
    owner: tuple[str, str] | None = None,
    labels: dict | None = None,
    containers: list[dict] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """One item of `kubectl get pods -A -o json`."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}
        ]
    body = {
        "serviceAccountName": service_account,
        "containers": containers or [{"name": "app", "image": "registry.example.com/app:1.4.2"}],
        **spec,
    }
    if node:
        body["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body}


def kube_list(*items: dict) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def namespace(name: str, enforce: str | None = None) -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": name}
    if enforce:
        labels["pod-security.kubernetes.io/enforce"] = enforce
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


GKE_PROJECT = "shop-prod-1234"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def gke_cluster(
    name: str = "prod",
    *,
    public: bool = True,
    authorized: list[str] | None = None,
    google_cloud_access: bool | None = False,
    anonymous: str | None = "LIMITED",
    bindings_allowed: bool | None = False,
    version: str = "1.33.5-gke.1308000",
    metadata: str | None = "GKE_METADATA",
    service_account: str | None = "default",
    scopes: list[str] | None = None,
    project: str = GKE_PROJECT,
) -> dict[str, Any]:
    """`gcloud container clusters describe --format=json` for one zonal Standard cluster.

    The base document (fixtures/gke/cluster.json) parses strictly as a v1 Cluster. `authorized`
    enables master authorized networks with those CIDRs; None leaves them off. Settings given
    as None are removed, as gcloud omits what the API does not report.
    """
    cluster = copy.deepcopy(_gke_base())
    cluster["name"] = name
    link = f"https://container.googleapis.com/v1/projects/{project}/zones/europe-west1-b/clusters"
    cluster["selfLink"] = f"{link}/{name}"
    cluster["currentMasterVersion"] = cluster["currentNodeVersion"] = version
    ip = cluster["controlPlaneEndpointsConfig"]["ipEndpointsConfig"]
    ip["enablePublicEndpoint"] = public
    if not public:
        del ip["publicEndpoint"]
        cluster["privateClusterConfig"] = {
            "enablePrivateNodes": True,
            "enablePrivateEndpoint": True,
            "privateEndpoint": ip["privateEndpoint"],
        }
    networks: dict[str, Any] = {}
    if authorized is not None:
        networks = {"enabled": True, "cidrBlocks": [{"cidrBlock": c} for c in authorized]}
    if google_cloud_access is not None:
        networks["gcpPublicCidrsAccessEnabled"] = google_cloud_access
    cluster["masterAuthorizedNetworksConfig"] = copy.deepcopy(networks)
    ip["authorizedNetworksConfig"] = networks
    _set_or_drop(cluster, "anonymousAuthenticationConfig", anonymous and {"mode": anonymous})
    _set_or_drop(
        cluster,
        "rbacBindingConfig",
        None
        if bindings_allowed is None
        else {
            "enableInsecureBindingSystemUnauthenticated": bindings_allowed,
            "enableInsecureBindingSystemAuthenticated": bindings_allowed,
        },
    )
    for config in (cluster["nodeConfig"], cluster["nodePools"][0]["config"]):
        _set_or_drop(config, "workloadMetadataConfig", metadata and {"mode": metadata})
        _set_or_drop(config, "serviceAccount", service_account)
        if scopes is not None:
            config["oauthScopes"] = scopes
    cluster["nodePools"][0]["version"] = version
    return cluster


@cache
def _gke_base() -> dict[str, Any]:
    return json.loads((FIXTURES / "gke" / "cluster.json").read_text())


def _set_or_drop(document: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        document.pop(key, None)
    else:
        document[key] = value


def gke_source(cluster_json: dict, **documents: Any) -> ClusterSource:
    """A GKE ClusterSource; keyword names map to files as in source()."""
    docs = {"cluster.json": cluster_json}
    # A scan uses up its source's documents (scan.evaluate); a test may scan the same ones again.
    docs.update(
        {f"{key.replace('_', '-')}.json": copy.deepcopy(value) for key, value in documents.items()}
    )
    return ClusterSource(Provider.GKE, cluster_json["name"], documents=docs)


def assess_gke(cluster_json: dict, **documents: Any) -> ClusterReport:
    return evaluate(gke_source(cluster_json, **documents), OBSERVED_AT)
