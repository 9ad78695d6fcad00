"""The GKE provider plug-in (mutguard.provider_api): light, so that the command line and the
functions read it before the Google Cloud SDK loads."""

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

# Project ids: 6-30 lowercase letters, digits and hyphens, starting with a letter; a domain-scoped
# project (example.com:my-project) keeps its prefix.
GCP_PROJECT = r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$"

if TYPE_CHECKING:  # only for the annotations: a function reads this module, never a command line
    import argparse


def add_options(parser: argparse.ArgumentParser) -> None:
    gcp = parser.add_argument_group("Google Cloud (--provider gcp)")
    gcp.add_argument(
        "--projects",
        type=comma_separated,
        default=(),
        help="comma-separated project ids; default: every project the credential can see",
    )


def options(args: argparse.Namespace) -> Any:
    from mutguard.providers.gke_live import GcpOptions

    return GcpOptions(
        projects=args.projects,
        locations=args.locations,
        clusters=args.clusters,
        concurrency=args.concurrency,
        in_cluster=not args.skip_in_cluster,
        project_timeout=args.region_timeout,
    )


def invoke_options(target: Any, include_rbac: bool, settings: Any) -> Any:
    from mutguard.providers.gke_live import GcpOptions

    endpoint = {"api_endpoint": settings.gke_endpoint} if settings.gke_endpoint else None
    return GcpOptions(
        projects=(target.account,),
        locations=(target.region,) if target.region else (),
        clusters=target.clusters,
        container_client_options=endpoint,
        in_cluster=include_rbac,
    )


PLUGIN = ProviderPlugin(
    name="gke",
    aliases=("gcp",),
    parser="mutguard.providers.gke",
    labels=Labels("GKE", "container.googleapis.com/Cluster", Cloud("gcp", 5, "GCP Account")),
    checks=("mutguard.checks.gke",),
    collector="mutguard.providers.gke_live",
    extra="gcp",
    purpose="scanning GKE",
    command_line=CommandLine(
        options=options, add_options=add_options, filters={"projects": "--projects"}
    ),
    invoke=Invoke(AccountFormat(GCP_PROJECT, "a Google Cloud project id"), invoke_options),
)
