"""The AKS provider plug-in (mutguard.provider_api): light, so that the command line and the
functions read it before the Azure SDK loads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mutguard.provider_api import (
    AccountFormat,
    Cloud,
    CommandLine,
    Invoke,
    Labels,
    ProviderPlugin,
    comma_separated,
)

AZURE_SUBSCRIPTION = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

if TYPE_CHECKING:  # only for the annotations: a function reads this module, never a command line
    import argparse


def add_options(parser: argparse.ArgumentParser) -> None:
    azure = parser.add_argument_group("Azure (--provider azure)")
    azure.add_argument(
        "--subscriptions",
        type=comma_separated,
        default=(),
        help="comma-separated subscription ids; default: every subscription the credential lists",
    )


def options(args: argparse.Namespace) -> Any:
    from mutguard.providers.aks_live import AzureOptions

    return AzureOptions(
        subscriptions=args.subscriptions,
        locations=args.locations,
        clusters=args.clusters,
        concurrency=args.concurrency,
        in_cluster=not args.skip_in_cluster,
        subscription_timeout=args.region_timeout,
    )


def invoke_options(target: Any, include_rbac: bool, settings: Any) -> Any:
    from mutguard.providers.aks_live import AzureOptions

    return AzureOptions(
        subscriptions=(target.account,),
        locations=(target.region,) if target.region else (),
        clusters=target.clusters,
        base_url=settings.arm_endpoint,
        in_cluster=include_rbac,
    )


PLUGIN = ProviderPlugin(
    name="aks",
    aliases=("azure",),
    parser="mutguard.providers.aks",
    labels=Labels(
        "AKS", "Microsoft.ContainerService/managedClusters", Cloud("azure", 6, "Azure AD Account")
    ),
    checks=("mutguard.checks.aks",),
    collector="mutguard.providers.aks_live",
    extra="azure",
    purpose="scanning AKS",
    command_line=CommandLine(
        options=options, add_options=add_options, filters={"subscriptions": "--subscriptions"}
    ),
    invoke=Invoke(
        AccountFormat(AZURE_SUBSCRIPTION, "an Azure subscription id (a GUID)"), invoke_options
    ),
)
