"""Provider adapters, found by name in one registry so that no cloud SDK loads before it is
needed: each provider is one `ProviderPlugin` (mutguard.provider_api), built in here or added by
another distribution through the `mutguard.providers` entry-point group."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from mutguard.errors import InputError
from mutguard.provider_api import Labels, ProviderPlugin
from mutguard.registry import Registry

if TYPE_CHECKING:  # mutguard.sources loads dataclasses: not before the command line is parsed
    from mutguard.sources import Provider

# The entry-point group is named after this package: mutguard.providers (sources.PLUGIN_GROUP,
# which makes the installed plug-ins' names Provider members).
PROVIDERS: Registry[ProviderPlugin] = Registry("provider", __name__, lambda plugin: plugin.names)
PROVIDERS.add("eks", "mutguard.providers.eks_plugin:PLUGIN")
PROVIDERS.add("gke", "mutguard.providers.gke_plugin:PLUGIN")
PROVIDERS.add("aks", "mutguard.providers.aks_plugin:PLUGIN")
PROVIDERS.add("kubernetes", "mutguard.providers.kubernetes_plugin:PLUGIN")


def parser(provider: Provider) -> ModuleType:
    return PROVIDERS.get(provider).parser_module()


def live(name: str) -> ModuleType:
    """The live collector of the provider `name` (or an alias: `aws`)."""
    return PROVIDERS.get(name).collector_module()


def labels(provider: Provider) -> Labels:
    """How reports name the provider's clusters (ProviderPlugin.labels)."""
    return PROVIDERS.get(provider).labels


def live_source(provider: Provider, cluster: str) -> str | None:
    """The options that read this one cluster live again (for `mutguard explain`'s hint):
    `--provider aws`, or the provider's own source option with the filters that pick the
    cluster by name (`--kubeconfig PATH --context NAME`); None without a live collector."""
    plugin = PROVIDERS.get(provider)
    line = plugin.command_line
    if line is None:
        return None
    if line.source is None:
        return f"--provider {(plugin.aliases or (plugin.name,))[0]}"
    picks = "".join(f" {flag} {cluster}" for flag in line.filters.values())
    return f"{line.source.flag} {line.source.metavar}{picks}"


def detect(cluster_json: Any) -> Provider:
    """The provider whose CLI printed this cluster.json; the installed plug-ins are asked only
    when no built-in one knows it."""
    from mutguard.sources import Provider

    for search_installed in (False, True):
        for plugin in PROVIDERS.entries(search_installed):
            if plugin.parser_module().looks_like(cluster_json):
                return Provider(plugin.name)
    raise InputError(
        "cluster.json is not `aws eks describe-cluster`, `gcloud container clusters describe` "
        "or `az aks show` output, nor mutguard's own {'kubernetes': …} document"
    )
