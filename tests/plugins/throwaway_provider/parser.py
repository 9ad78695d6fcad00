"""cluster.json of the lab: {"throwaway": {"name": ..., "public_endpoint": bool}}."""

from __future__ import annotations

from typing import Any

from mutguard.cluster import Cluster, EndpointAccess, parse_common
from mutguard.errors import InputError
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider


class LabCluster(Cluster):
    pass


def looks_like(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("throwaway"), dict)


def parse(source: ClusterSource, observed_at: Any) -> LabCluster:
    document = source.documents.get(CLUSTER_DOC)
    if not looks_like(document):
        raise InputError(f"{CLUSTER_DOC}: expected the throwaway lab's document")
    lab = document["throwaway"]
    public = lab.get("public_endpoint") is True
    return LabCluster(
        provider=Provider("throwaway"),
        name=str(lab.get("name", source.name)),
        location="lab",
        account=source.account,
        arn_or_id=f"lab://{lab.get('name', source.name)}",
        observed_at=observed_at,
        endpoint=EndpointAccess(public=public, private=True, public_cidrs=["0.0.0.0/0"] * public),
        **parse_common(source, dict(source.errors)),
    )
