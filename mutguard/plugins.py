"""Modules loaded on first use (providers, sinks, state stores, secret sources), so that no SDK
loads before it is needed, and one clear line when the optional dependency a module imports is
not installed: what needed it and the extra (pyproject.toml) that installs it."""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType

from mutguard.errors import MissingDependency


@dataclass(frozen=True)
class Requirement:
    """What a plug-in imports beyond mutguard's own dependencies: the pyproject extra that
    installs it, and the modules it imports only when used, with their distributions."""

    extra: str
    imports_later: Mapping[str, str] = field(default_factory=dict)


# The SDKs of the built-in plug-ins, each named once.
BOTO3 = Requirement("aws", {"boto3": "boto3"})
SLACK_SDK = Requirement("notify", {"slack_sdk": "slack-sdk"})
GOOGLE_CLOUD_STORAGE = Requirement("notify-gcp", {"google.cloud.storage": "google-cloud-storage"})
GOOGLE_PUBSUB = Requirement("notify-gcp", {"google.cloud.pubsub_v1": "google-cloud-pubsub"})
GOOGLE_SECURITY_CENTER = Requirement(
    "notify-gcp", {"google.cloud.securitycenter_v2": "google-cloud-securitycenter"}
)
GOOGLE_SECRET_MANAGER = Requirement(
    "notify-gcp", {"google.cloud.secretmanager_v1": "google-cloud-secret-manager"}
)
AZURE_QUEUE = Requirement("notify-azure", {"azure.storage.queue": "azure-storage-queue"})
AZURE_BLOB = Requirement("notify-azure", {"azure.storage.blob": "azure-storage-blob"})
AZURE_TABLES = Requirement("notify-azure", {"azure.data.tables": "azure-data-tables"})


@dataclass(frozen=True)
class Plugin:
    module: str
    extra: str | None = None  # None: it imports nothing beyond mutguard's own dependencies
    # Modules it imports only when used (to stay light), and their distributions: checked for
    # on load all the same, so a missing one is named before anything runs.
    imports_later: Mapping[str, str] = field(default_factory=dict)

    def load(self, purpose: str) -> ModuleType:
        for name, distribution in self.imports_later.items():
            with needs(purpose, self.extra, distribution):
                if importlib.util.find_spec(name) is None:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        with needs(purpose, self.extra):
            return importlib.import_module(self.module)


@contextmanager
def needs(purpose: str, extra: str | None, distribution: str | None = None) -> Iterator[None]:
    """Turn a ModuleNotFoundError for a third-party module into MissingDependency naming
    `distribution`, else every requirement of `extra` that is not installed."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if extra is None or (exc.name or "").split(".")[0] == "mutguard":
            raise  # mutguard's own module is missing: an installation bug, not an extra
        missing = [distribution] if distribution else _uninstalled_requirements(extra)
        raise MissingDependency(
            f"{purpose} needs {', '.join(missing or [exc.name or 'a module'])}: "
            f"pip install 'mutguard[{extra}]'"
        ) from None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _uninstalled_requirements(extra: str) -> list[str]:
    """The distributions `extra` requires that are not installed, from mutguard's metadata."""
    from importlib import metadata

    try:
        requirements = metadata.requires("mutguard") or []
    except metadata.PackageNotFoundError:
        return []
    missing = []
    for requirement in requirements:
        name, _, marker = requirement.partition(";")
        match = _NAME.match(name.strip())
        if match is None or f'extra == "{extra}"' not in marker.replace("'", '"'):
            continue
        try:
            metadata.version(match.group())
        except metadata.PackageNotFoundError:
            missing.append(match.group())
    return missing
