"""Provider adapters, looked up by name so that no cloud SDK loads before it is needed.

Each parser module exposes `looks_like(cluster_json) -> bool` and
`parse(ClusterSource, observed_at) -> Cluster`; each live module exposes `collect(options)`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from mutguard.errors import InputError
from mutguard.plugins import Plugin
from mutguard.sources import Provider

PARSERS: dict[Provider, str] = {
    Provider.EKS: "mutguard.providers.eks",
    Provider.GKE: "mutguard.providers.gke",
    Provider.AKS: "mutguard.providers.aks",
    Provider.KUBERNETES: "mutguard.providers.kubernetes",
}

# name -> (the live collector, what a user does with it).
LIVE: dict[str, tuple[Plugin, str]] = {
    "aws": (Plugin("mutguard.providers.eks_live", "aws"), "scanning EKS"),
    "gcp": (Plugin("mutguard.providers.gke_live", "gcp"), "scanning GKE"),
    "azure": (Plugin("mutguard.providers.aks_live", "azure"), "scanning AKS"),
    "kubernetes": (
        Plugin("mutguard.providers.kubeconfig", "kube"),
        "scanning through a kubeconfig",
    ),
}


def parser(provider: Provider) -> ModuleType:
    if provider not in PARSERS:
        raise InputError(f"no parser for provider {provider.value} yet")
    return importlib.import_module(PARSERS[provider])


def live(name: str) -> ModuleType:
    if name not in LIVE:
        raise InputError(f"unknown provider {name!r}: choose one of {', '.join(sorted(LIVE))}")
    plugin, purpose = LIVE[name]
    return plugin.load(purpose)


def detect(cluster_json: Any) -> Provider:
    """The provider whose CLI printed this cluster.json."""
    for provider in PARSERS:
        if parser(provider).looks_like(cluster_json):
            return provider
    raise InputError(
        "cluster.json is not `aws eks describe-cluster`, `gcloud container clusters describe` "
        "or `az aks show` output, nor mutguard's own {'kubernetes': …} document"
    )
