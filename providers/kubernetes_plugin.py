"""The plain-Kubernetes provider plug-in (mutguard.provider_api): any cluster, read through
kubeconfig contexts; chosen by `--kubeconfig PATH`, not `--provider`, and not a function target
(a function has no kubeconfig)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutguard.errors import InputError
from mutguard.provider_api import CommandLine, Labels, ProviderPlugin, SourceOption

if TYPE_CHECKING:  # only for the annotations: a function reads this module, never a command line
    import argparse


def add_options(parser: argparse.ArgumentParser) -> None:
    kube = parser.add_argument_group("Any cluster (--kubeconfig)")
    kube.add_argument(
        "--context",
        action="append",
        default=[],
        dest="contexts",
        metavar="NAME",
        help="a kubeconfig context to scan; repeat for several (default: current-context)",
    )


def options(args: argparse.Namespace) -> Any:
    from mutguard.providers.kubernetes_live import KubeconfigOptions

    if args.skip_in_cluster:
        raise InputError("--skip-in-cluster leaves nothing to read through --kubeconfig")
    if args.clusters or args.locations:
        raise InputError("--kubeconfig picks clusters with --context")
    return KubeconfigOptions(
        path=args.kubeconfig, contexts=tuple(args.contexts), concurrency=args.concurrency
    )


PLUGIN = ProviderPlugin(
    name="kubernetes",
    parser="mutguard.providers.kubernetes",
    labels=Labels("Kubernetes", "Kubernetes cluster"),
    checks=("mutguard.checks.kubernetes",),
    collector="mutguard.providers.kubernetes_live",
    extra="kube",
    purpose="scanning through a kubeconfig",
    command_line=CommandLine(
        options=options,
        add_options=add_options,
        filters={"contexts": "--context"},
        source=SourceOption(
            "--kubeconfig",
            metavar="PATH",
            help="scan any cluster through kubeconfig contexts (provider kubernetes)",
            type=Path,
        ),
    ),
)
