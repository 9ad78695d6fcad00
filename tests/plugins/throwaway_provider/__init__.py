"""A provider that exists only to prove the plug-in contract (tests/test_provider_plugin.py):
registered through the `mutguard.providers` entry point of a distribution the test makes, it is
scanned from the command line, from a snapshot and from a function invoke, with no mutguard file
naming it. Its one cloud is the `lab/` folder beside this file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from mutguard.provider_api import AccountFormat, CommandLine, Invoke, Labels, ProviderPlugin


@dataclass(frozen=True)
class LabOptions:
    cluster: str
    account: str


def add_options(parser: argparse.ArgumentParser) -> None:
    lab = parser.add_argument_group("Throwaway lab (--provider throwaway)")
    lab.add_argument("--lab-cluster", default="lab", help="the name the lab's cluster reports")


def options(args: argparse.Namespace) -> LabOptions:
    return LabOptions(args.lab_cluster, "lab-1")


def invoke_options(target: Any, include_rbac: bool, settings: Any) -> LabOptions:
    return LabOptions(target.cluster or "lab", target.account)


PLUGIN = ProviderPlugin(
    name="throwaway",
    parser="throwaway_provider.parser",
    labels=Labels("Throwaway", "Throwaway cluster"),
    checks=("throwaway_provider.checks",),
    collector="throwaway_provider.live",
    purpose="scanning the throwaway lab",
    command_line=CommandLine(options=options, add_options=add_options),
    invoke=Invoke(AccountFormat(r"^lab-\d+$", "a lab id (lab-N)"), invoke_options),
)
