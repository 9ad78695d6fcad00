"""What adapters hand to the scan: the snapshot layout's documents of one cluster, or an error.

Kept free of pydantic and of any cloud SDK so that a live collector starts fast: a serverless
run pays for every import before its first API call.
"""

from __future__ import annotations

import json
import re
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


# A \uD800-\uDFFF escape in JSON text: half of a UTF-16 surrogate pair, or a lone one.
_SURROGATE_ESCAPE = r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
_SURROGATE_ESCAPES = (re.compile(_SURROGATE_ESCAPE), re.compile(_SURROGATE_ESCAPE.encode()))
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def load_json(text: str | bytes) -> Any:
    """A JSON document as the API server's Go decoder reads it: a lone surrogate escape
    (`"\\ud800"` with no partner) becomes U+FFFD. Python's json keeps it as is, and then no
    report, log line or message can encode the string (UTF-8 refuses surrogates), so one hostile
    name would cost the whole run. Raises json.JSONDecodeError (a ValueError) as json.loads."""
    document = json.loads(text)
    escapes = _SURROGATE_ESCAPES[isinstance(text, bytes)]
    return _without_lone_surrogates(document) if escapes.search(text) else document


def _without_lone_surrogates(value: Any) -> Any:
    """`value` (JSON-shaped) with each lone surrogate in its strings and keys as U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _without_lone_surrogates(key): _without_lone_surrogates(item)
            for key, item in value.items()
        }
    return value
