"""A name -> plug-in registry whose entries load on first use, and which other distributions
extend through an entry-point group (`[project.entry-points."GROUP"]` in their pyproject.toml).

The installed distributions are searched only when a name is not built in, or when every name
is listed: that search imports importlib.metadata and reads every installed distribution, which
neither `mutguard --help` nor a function's cold start should pay for. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from mutguard.errors import InputError

if TYPE_CHECKING:
    from mutguard.plugins import Requirement

T = TypeVar("T")


def _attribute(found: object, attribute: str) -> object:
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
        self._summaries: dict[str, str] = {}
        self._builtin: list[str] = []
        self._searched = group is None

    def add(
        self,
        name: str,
        reference: str,
        *,
        needs: Requirement | None = None,
        summary: str = "",
    ) -> None:
        """A built-in entry: `reference` is `module` (the entry is the module) or
        `module:attribute`, imported when first needed. `needs` is what it imports beyond
        mutguard's own dependencies (mutguard.plugins.Requirement): a missing one is named before
        anything runs. `summary` is one line for help texts (`summaries()`), read without loading
        it."""
        if name in self._loaders:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        module, _, attribute = reference.partition(":")

        def load() -> object:
            from mutguard.plugins import Plugin

            plugin = Plugin(module, needs.extra, needs.imports_later) if needs else Plugin(module)
            found = plugin.load(f"the {name} {self.what}")
            return _attribute(found, attribute)

        self._loaders[name] = load
        self._summaries[name] = summary
        self._builtin.append(name)

    def summaries(self) -> dict[str, str]:
        """The built-in entries' names and one-line summaries, in registration order; nothing is
        loaded or searched."""
        return dict(self._summaries)

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
