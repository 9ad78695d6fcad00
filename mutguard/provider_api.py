"""What a provider plug-in is: one object naming its parser, checks, live collector, command-line
options and invoke-payload support, registered once (docs/architecture.md, A provider).

Built-in providers are registered in `mutguard.providers`; another distribution adds one with an
entry point in the `mutguard.providers` group whose name is the provider's and whose value is its
ProviderPlugin (`my_package.plugin:PLUGIN`). The object and the module that holds it stay light
(stdlib and this module): the command line builds its parser from every built-in plug-in, and
a function validates its payload against them, before any SDK or pydantic model is needed.
Hence named tuples, which cost a fraction of a dataclass's import and creation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # only for the annotations: a function never parses a command line
    import argparse

    from mutguard.barriers import Barriers


def comma_separated(value: str) -> tuple[str, ...]:
    """An option's value as a list: `a, b,,c` -> ("a", "b", "c")."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


class SourceOption(NamedTuple):
    """An option of its own that chooses the provider instead of `--provider NAME`, taking the
    one argument its collector needs (`--kubeconfig PATH`)."""

    flag: str
    metavar: str
    help: str
    type: Callable[[str], Any] = str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


class CommandLine(NamedTuple):
    """How `mutguard scan|snapshot|explain` read the provider live.

    `options(args)` builds the collector's options from the parsed arguments (InputError for a
    misuse); it runs after the collector loaded, so it may import the collector's module.
    `add_options(parser)` adds the provider's option group; `filters` maps the destinations of
    those options that choose which clusters are read to their flags, for `mutguard explain`'s
    hint.
    """

    options: Callable[[argparse.Namespace], Any]
    add_options: Callable[[argparse.ArgumentParser], None] | None = None
    filters: Mapping[str, str] = MappingProxyType({})
    source: SourceOption | None = None


class AccountFormat(NamedTuple):
    """What an invoke payload's `account` looks like for the provider."""

    pattern: str  # a regular expression the account must match (re.match)
    what: str  # as the error says it: "a 12-digit AWS account id"


class Invoke(NamedTuple):
    """How the functions scan the provider: payload targets name it, with an account of this
    format; `options(target, include_rbac, settings)` builds the collector's options from a
    target and the function's settings (InputError for a setting that is missing)."""

    account: AccountFormat
    options: Callable[[Any, bool, Any], Any]


class Cloud(NamedTuple):
    """The cloud a provider's clusters live in, as OCSF names it (cloud.provider, and the
    cloud.account type: its type_id and type)."""

    provider: str  # "aws"
    account_type_id: int
    account_type: str


class Labels(NamedTuple):
    """How reports name the provider's clusters: `title` in text ("EKS"), `resource_type` a
    cluster's type in OCSF and security-hub findings ("AWS::EKS::Cluster"), `cloud` None for
    clusters in no cloud."""

    title: str
    resource_type: str
    cloud: Cloud | None = None


class ProviderPlugin(NamedTuple):
    """A provider: `name` is the `Provider` value its clusters carry; `aliases` are the other
    names the command line takes (`aws` for `eks`).

    `parser` is the module with `looks_like(cluster_json) -> bool`, `parse(ClusterSource,
    observed_at) -> Cluster` and optionally `barriers(cluster) -> Barriers`; `checks` the modules
    of its `@check` functions. `collector` is the live module, with `collect(options,
    on_progress=None)` yielding `ClusterSource | ScanError`; `extra` the pyproject extra that
    installs what it imports, and `purpose` what a missing one is needed for ("scanning EKS").
    """

    name: str
    parser: str
    labels: Labels
    checks: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    collector: str | None = None
    extra: str | None = None
    purpose: str = ""
    command_line: CommandLine | None = None
    invoke: Invoke | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def parser_module(self) -> ModuleType:
        """The parser, once the checks that judge what it parses are registered."""
        self.import_checks()
        return importlib.import_module(self.parser)

    def import_checks(self) -> None:
        for module in self.checks:
            importlib.import_module(module)

    def collector_module(self) -> ModuleType:
        """The live collector, or MissingDependency naming the extra that installs it."""
        from mutguard.errors import InputError
        from mutguard.plugins import Plugin

        if self.collector is None:
            raise InputError(f"provider {self.name} has no live collector: scan a snapshot")
        return Plugin(self.collector, self.extra).load(self.purpose)

    def barriers(self, cluster: Any) -> Barriers:
        """What its platform changes in the attack graph before any mistake."""
        from mutguard.barriers import Barriers

        report = getattr(self.parser_module(), "barriers", None)
        return Barriers() if report is None else report(cluster)
