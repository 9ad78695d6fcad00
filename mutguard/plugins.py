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
