"""A name -> plug-in registry whose entries load on first use, and which other distributions
extend through an entry-point group (`[project.entry-points."GROUP"]` in their pyproject.toml).

The installed distributions are searched only when a name is not built in, or when every name
is listed: that search imports importlib.metadata and reads every installed distribution, which
neither `mutguard --help` nor a function's cold start should pay for. Stdlib only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from mutguard.errors import InputError

T = TypeVar("T")


def load_reference(reference: str) -> object:
    """The object an entry-point style reference names: `package.module:attribute`."""
    module, _, attribute = reference.partition(":")
    found: object = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        found = getattr(found, part)
    return found


class Registry(Generic[T]):
    """Names -> entries of one kind (`what`: "provider", "sink", ...), each loaded once, when
    first asked for. `names_of(entry)` is the entry's own name and then its aliases: aliases are
    learnt from the loaded entries, so they are declared in one place, the entry."""

    def __init__(
        self,
        what: str,
        group: str | None = None,
        names_of: Callable[[T], Sequence[str]] | None = None,
    ) -> None:
        self.what = what
        self.group = group
        self._names_of = names_of
        self._loaders: dict[str, Callable[[], Any]] = {}
        self._loaded: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._builtin: list[str] = []
        self._searched = group is None

    def add(self, name: str, reference: str) -> None:
        """A built-in entry: `reference` is `module:attribute`, imported when first needed."""
        if name in self._loaders:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._loaders[name] = lambda: load_reference(reference)
        self._builtin.append(name)

    def get(self, name: str) -> T:
        """The entry called `name` (or one of its aliases), loaded; InputError naming the choices
        when there is none."""
        canonical = self._canonical(name)
        if canonical is None:
            raise InputError(
                f"unknown {self.what} {name!r}: choose one of {', '.join(self.names())}"
            )
        return self._load(canonical)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._canonical(name) is not None

    def names(self) -> list[str]:
        """Every entry's own name: the built-in ones in registration order, then the installed."""
        self._search_installed()
        return list(self._loaders)

    def entries(self, search_installed: bool = True) -> list[T]:
        """Every entry, loaded; without `search_installed` only the built-in ones and those of
        other distributions already asked for by name."""
        if search_installed:
            self._search_installed()
            return [self._load(name) for name in self._loaders]
        known = dict.fromkeys([*self._builtin, *self._loaded])
        return [self._load(name) for name in known]

    def _canonical(self, name: str) -> str | None:
        for search_installed in (False, True):
            if search_installed:
                self._search_installed()
            if name in self._loaders:
                return name
            if name in self._aliases:
                return self._aliases[name]
            if self._names_of is not None:  # aliases are known once their entries are loaded
                for entry in list(self._loaders):
                    self._load(entry)
                if name in self._aliases:
                    return self._aliases[name]
        return None

    def _load(self, name: str) -> T:
        if name not in self._loaded:
            try:
                entry = self._loaders[name]()
            except (ImportError, AttributeError) as exc:  # a broken plug-in, named
                raise InputError(f"{self.what} plug-in {name!r} cannot be loaded: {exc}") from exc
            if self._names_of is not None:
                own, *aliases = self._names_of(entry)
                if own != name:
                    raise InputError(f"{self.what} plug-in {name!r} calls itself {own!r}")
                for alias in aliases:
                    self._aliases.setdefault(alias, name)
            self._loaded[name] = entry
        return self._loaded[name]

    def _search_installed(self) -> None:
        if self._searched:
            return
        from importlib.metadata import entry_points

        self._searched = True
        for point in sorted(entry_points(group=self.group), key=lambda p: p.name):
            self._loaders.setdefault(point.name, point.load)
