"""What adapters hand to the scan: the snapshot layout's documents of one cluster, or an error.

Kept free of pydantic and of any cloud SDK so that a live collector starts fast: a serverless
run pays for every import before its first API call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# The entry-point group through which other distributions add providers (mutguard.provider_api),
# named after the package whose registry finds them.
PLUGIN_GROUP = "mutguard.providers"


class Provider(StrEnum):
    EKS = "eks"
    GKE = "gke"
    AKS = "aks"
    KUBERNETES = "kubernetes"

    @classmethod
    def _missing_(cls, value: object) -> Provider | None:
        """A provider another distribution installs is a member too, made when first named, so
        its clusters and reports validate like the built-in ones. Not listed by iteration: the
        checks that apply to "every provider" mean the built-in ones, whose remediation they
        know."""
        from importlib.metadata import entry_points

        if not isinstance(value, str) or value not in entry_points(group=PLUGIN_GROUP).names:
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return cls._value2member_map_.setdefault(value, member)


# The snapshot layout (docs/architecture.md, Snapshot layout): one file per document in a cluster
# directory.
CLUSTER_DOC = "cluster.json"
RBAC_DOC = "rbac.json"
WORKLOADS_DOC = "workloads.json"
PROBE_DOC = "probe.json"
ERRORS_DOC = "errors.json"
ACCESS_ENTRIES_DOC = "access-entries.json"
IDENTITY_PROVIDERS_DOC = "identity-providers.json"
NAMESPACES_DOC = "namespaces.json"
ADMISSION_DOC = "admission.json"
AWS_AUTH_DOC = "aws-auth.json"  # kubectl -n kube-system get configmap aws-auth -o json


@dataclass
class ClusterSource:
    """The raw documents of one cluster, keyed by snapshot file name, and why any could not be read.

    `provider`, `name`, `location` and `account` are known before cluster.json is parsed (from the
    listing or the directory), so a cluster whose description fails is still reported by name.
    """

    provider: Provider
    name: str
    location: str = ""
    account: str = ""
    documents: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    origin: str = ""


def selected(source: ClusterSource, clusters: Sequence[str], locations: Sequence[str] = ()) -> bool:
    """Whether a listed cluster is among those asked for (an empty filter asks for all).
    Locations compare as the clouds print them in different places: `West Europe` = `westeurope`."""
    if clusters and source.name not in clusters:
        return False
    return not locations or _location(source.location) in {_location(name) for name in locations}


def _location(name: str) -> str:
    return name.replace(" ", "").lower()


@dataclass(frozen=True)
class ScanError:
    """A failure above any one cluster: an account not assumed, a region not listed. `scope` is
    provider:account[:region], e.g. eks:123456789012:eu-west-1."""

    scope: str
    message: str
