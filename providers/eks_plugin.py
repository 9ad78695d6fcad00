"""The EKS provider plug-in (mutguard.provider_api): light, so that the command line and the
functions read it before boto3 loads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mutguard.errors import InputError
from mutguard.provider_api import (
    AccountFormat,
    Cloud,
    CommandLine,
    Invoke,
    Labels,
    ProviderPlugin,
    comma_separated,
)

if TYPE_CHECKING:  # only for the annotations: a function reads this module, never a command line
    import argparse


def add_options(parser: argparse.ArgumentParser) -> None:
    aws = parser.add_argument_group("AWS (--provider aws)")
    aws.add_argument(
        "--regions",
        type=comma_separated,
        default=(),
        help="comma-separated; default: the account's enabled regions",
    )
    aws.add_argument(
        "--role-arn",
        action="append",
        default=[],
        dest="role_arns",
        help="role to assume; repeat for several, or use {account} with --accounts",
    )
    aws.add_argument(
        "--accounts",
        type=comma_separated,
        default=(),
        help="comma-separated account ids for a --role-arn template",
    )
    aws.add_argument("--external-id", help="external id required by the roles' trust policy")
    aws.add_argument("--profile", help="AWS profile for the base credentials")


def options(args: argparse.Namespace) -> Any:
    from mutguard.providers.eks_live import AwsOptions

    if args.locations:
        raise InputError("AWS regions are chosen with --regions, not --locations")
    return AwsOptions(
        regions=args.regions,
        role_arns=tuple(args.role_arns),
        accounts=args.accounts,
        external_id=args.external_id,
        profile=args.profile,
        clusters=args.clusters,
        concurrency=args.concurrency,
        in_cluster=not args.skip_in_cluster,
        region_timeout=args.region_timeout,
    )


def invoke_options(target: Any, include_rbac: bool, settings: Any) -> Any:
    from mutguard.providers.eks_live import AwsOptions

    if settings.role_arn is None:
        raise InputError(
            "MUTGUARD_ROLE_ARN is not set: the role to assume in each account, with {account}"
        )
    return AwsOptions(
        regions=(target.region,) if target.region else settings.regions,
        role_arns=(settings.role_arn,),
        accounts=(target.account,),
        external_id=settings.external_id,
        clusters=target.clusters,
        in_cluster=include_rbac,
    )


PLUGIN = ProviderPlugin(
    name="eks",
    aliases=("aws",),
    parser="mutguard.providers.eks",
    labels=Labels("EKS", "AWS::EKS::Cluster", Cloud("aws", 10, "AWS Account")),
    checks=("mutguard.checks.eks",),
    collector="mutguard.providers.eks_live",
    extra="aws",
    purpose="scanning EKS",
    command_line=CommandLine(
        options=options,
        add_options=add_options,
        filters={
            "regions": "--regions",
            "role_arns": "--role-arn",
            "accounts": "--accounts",
            "profile": "--profile",
        },
    ),
    invoke=Invoke(AccountFormat(r"^\d{12}$", "a 12-digit AWS account id"), invoke_options),
)
