"""What the checks read: one cluster's posture, parsed from the raw documents an adapter collected.

Adapters (live or snapshot) hand over a ClusterSource (mutguard.sources): the raw JSON documents
of the snapshot layout (docs/architecture.md, Snapshot layout), so a live scan and an offline
scan are the same scan. Each provider parses cluster.json into its Cluster subclass; the
in-cluster documents (rbac.json, probe.json) are parsed here because they do not depend on the
cloud.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mutguard.errors import InputError
from mutguard.platform_rbac import catalogue_for
from mutguard.rbac import RbacPolicy
from mutguard.sources import (
    ADMISSION_DOC,
    NAMESPACES_DOC,
    PROBE_DOC,
    RBAC_DOC,
    WORKLOADS_DOC,
    ClusterSource,
    Provider,
)
from mutguard.workloads import Workloads

T = TypeVar("T")


class EndpointAccess(BaseModel):
    """Who can reach the API server over the network."""

    model_config = ConfigDict(frozen=True)

    public: bool
    private: bool
    public_cidrs: list[str] = Field(default_factory=list)


class Probe(BaseModel):
    """probe.json: did the API server answer GET /version and GET /api without credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    anonymous_version: bool
    anonymous_api: bool


class Cluster(BaseModel):
    """The provider-neutral part of a cluster's posture; providers subclass it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    provider: Provider
    name: str
    location: str
    account: str
    arn_or_id: str
    version: str | None = None
    observed_at: datetime
    endpoint: EndpointAccess | None = None
    probe: Probe | None = None
    rbac: RbacPolicy | None = None
    workloads: Workloads | None = None
    namespaces: dict[str, dict[str, str]] | None = None  # name -> labels
    admission_webhooks: list[str] | None = None  # "<configuration>/<webhook>" names
    collection_errors: dict[str, str] = Field(default_factory=dict)
    origin: str = ""

    def minor_version(self) -> tuple[int, int] | None:
        return minor_version(self.version)

    def missing(self, document: str) -> str:
        """Why a document is absent, for UNKNOWN results: the error or 'not collected'."""
        return self.collection_errors.get(document, f"{document} was not collected")


_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.|$)")


def minor_version(version: str | None) -> tuple[int, int] | None:
    """(1, 33) from "1.33", "1.33.5" or "1.33.5-gke.1308000"; None when it is not a Kubernetes
    version."""
    match = _VERSION.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_optional(
    source: ClusterSource, errors: dict[str, str], document: str, parse: Callable[[Any], T]
) -> T | None:
    """Parse an optional document; a malformed one is recorded in errors and read as absent,
    so its checks say UNKNOWN with the reason while the rest of the cluster is still assessed."""
    raw = source.documents.get(document)
    if raw is None:
        return None
    try:
        return parse(raw)
    except InputError as exc:
        errors[document] = str(exc)
        return None
    # A shape no parser anticipated must still cost only this document, never the whole run.
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        errors[document] = f"{document}: unexpected structure ({type(exc).__name__}: {exc})"
        return None


def _parse_probe(raw: Any) -> Probe:
    try:
        return Probe.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            f"{PROBE_DOC}: expected {{anonymous_version: bool, anonymous_api: bool}}"
        ) from exc


def _list_items(document: Any, name: str) -> list[dict]:
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise InputError(f"{name}: expected a kubectl List with an 'items' array")
    items = document["items"]
    if not all(isinstance(i, dict) and isinstance(i.get("metadata"), dict) for i in items):
        raise InputError(f"{name}: every item needs metadata")
    return items


def _parse_namespaces(document: Any) -> dict[str, dict[str, str]]:
    namespaces = {}
    for item in _list_items(document, NAMESPACES_DOC):
        name, labels = str(item["metadata"].get("name")), item["metadata"].get("labels") or {}
        if not isinstance(labels, dict):
            raise InputError(
                f"{NAMESPACES_DOC}: Namespace {name}: metadata.labels must be an object"
            )
        namespaces[name] = dict(labels)
    return namespaces


def _parse_admission(document: Any) -> list[str]:
    names = []
    for item in _list_items(document, ADMISSION_DOC):
        name, webhooks = item["metadata"].get("name"), item.get("webhooks") or [{"name": ""}]
        if not isinstance(webhooks, list) or not all(isinstance(w, dict) for w in webhooks):
            raise InputError(
                f"{ADMISSION_DOC}: {item.get('kind')} {name}: webhooks must be a list of objects"
            )
        names += [f"{name}/{webhook.get('name')}" for webhook in webhooks]
    return names


def _skipped(reasons: Iterable[str]) -> str:
    """A document's error when some of its objects were skipped as malformed."""
    return "; ".join(f"{reason} (skipped: what it holds is not counted)" for reason in reasons)


def parse_common(source: ClusterSource, errors: dict[str, str]) -> dict[str, Any]:
    """Fields every provider's Cluster takes from the in-cluster documents."""
    platform = catalogue_for(source.provider)
    rbac = parse_optional(
        source, errors, RBAC_DOC, partial(RbacPolicy.from_kubectl, platform=platform, let_go=True)
    )
    if rbac is not None and rbac.unread:
        errors[RBAC_DOC] = _skipped([skipped.reason for skipped in rbac.unread])
    workloads = parse_optional(source, errors, WORKLOADS_DOC, Workloads.from_kubectl)
    if workloads is not None and workloads.unread:
        errors[WORKLOADS_DOC] = _skipped(workloads.unread)
    return {
        "probe": parse_optional(source, errors, PROBE_DOC, _parse_probe),
        "rbac": rbac,
        "workloads": workloads,
        "namespaces": parse_optional(source, errors, NAMESPACES_DOC, _parse_namespaces),
        "admission_webhooks": parse_optional(source, errors, ADMISSION_DOC, _parse_admission),
        "collection_errors": errors,
        "origin": source.origin,
    }
