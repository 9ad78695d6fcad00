"""Any Kubernetes cluster, read through a kubeconfig (provider `kubernetes`).

No cloud API describes a self-managed cluster, so its cluster.json is mutguard's own small
document, which `mutguard snapshot --kubeconfig` writes and anyone can write by hand:

    {"kubernetes": {"server": "https://10.0.0.10:6443", "context": "prod",
                    "version": <the JSON answer to GET /version, or null>}}

The provider is detected by its top-level "kubernetes" key. Everything else about the cluster
comes from the in-cluster documents all providers share (rbac.json, workloads.json, probe.json,
...). Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from mutguard.cluster import Cluster, parse_common
from mutguard.errors import InputError
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider

DOCUMENT_KEY = "kubernetes"


class _Document(BaseModel):
    model_config = ConfigDict(extra="ignore")

    server: str
    context: str
    version: dict[str, Any] | None = None


class KubernetesCluster(Cluster):
    server: str  # the API server URL the kubeconfig names

    def server_host(self) -> str:
        return urlsplit(self.server).hostname or ""


def cluster_document(server: str, context: str, version: dict | None) -> dict[str, Any]:
    """cluster.json for one kubeconfig context."""
    return {DOCUMENT_KEY: {"server": server, "context": context, "version": version}}


def server_location(server: str) -> str:
    """Where the cluster is, as far as a kubeconfig says: the server's host[:port]."""
    return urlsplit(server).netloc.rpartition("@")[2]


def _describe_error(exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in (DOCUMENT_KEY, *err['loc']))}: {err['msg']}"
        for err in exc.errors()
    )
    return f"{CLUSTER_DOC}: {problems}"


def _version(answer: dict[str, Any] | None) -> str | None:
    git_version = (answer or {}).get("gitVersion")
    return git_version.removeprefix("v") if isinstance(git_version, str) else None


def parse(source: ClusterSource, observed_at: Any) -> KubernetesCluster:
    """Build a KubernetesCluster from the documents; raises InputError naming what is malformed."""
    document = source.documents.get(CLUSTER_DOC)
    if not looks_like(document):
        raise InputError(
            f'{CLUSTER_DOC}: expected {{"kubernetes": {{"server": URL, "context": NAME}}}}'
        )
    try:
        doc = _Document.model_validate(document[DOCUMENT_KEY])
    except ValidationError as exc:
        raise InputError(_describe_error(exc)) from exc
    errors = dict(source.errors)
    return KubernetesCluster(
        provider=Provider.KUBERNETES,
        name=doc.context,
        location=server_location(doc.server),
        account="",
        arn_or_id=doc.server,
        version=_version(doc.version),
        observed_at=observed_at,
        server=doc.server,
        **parse_common(source, errors),
    )


def looks_like(document: Any) -> bool:
    """Whether a cluster.json is mutguard's document for a kubeconfig context."""
    return isinstance(document, dict) and isinstance(document.get(DOCUMENT_KEY), dict)
