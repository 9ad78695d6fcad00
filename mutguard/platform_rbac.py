"""Roles and bindings the platform creates itself, recognised by their whole content.

A cluster holds objects nobody in the team wrote and nobody can change: the Kubernetes bootstrap
policy, and the provider's own (EKS `eks:*`, GKE's, AKS's). Their grants are the platform's, not
the user's findings. Nothing is trusted by its name or labels, which anyone who may create a
binding can copy: a binding is the platform's when its kind, namespace, name, roleRef and subjects
are those of an object in the catalogue (mutguard/data/platform_rbac/, sources in SOURCES.md
there), and the role it names grants no dangerous power beyond what the catalogued role grants.
A binding that carries a catalogued name but differs is judged as any other, and says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from mutguard.rbac import Binding, Rule, parse_rules, powers

CATALOGUES = {
    "kubernetes": "the Kubernetes bootstrap policy",
    "eks": "Amazon EKS",
    "gke": "GKE",
    "aks": "AKS",
}
# The catalogues that apply to a provider's clusters, besides Kubernetes' own.
PROVIDER_CATALOGUES: dict[str, tuple[str, ...]] = {
    "eks": ("eks",),
    "gke": ("gke",),
    "aks": ("aks",),
}

Key = tuple[str, str, str]  # kind, namespace, name


SubjectKey = tuple[str, str, str]  # kind, name, namespace


@dataclass(frozen=True)
class Recognition:
    """What the catalogue says of a binding that carries a catalogued name: the subjects it
    binds as the platform does (their grants are the platform's), and why, for the others, it
    is only a look-alike."""

    platform_subjects: frozenset[SubjectKey]
    look_alike: str
    why: str = ""  # for the platform's subjects: the catalogued object and its source
    # The subjects the catalogue lists for this name and roleRef, also when the role here grants
    # more than the catalogued one (or is not catalogued at all).
    listed_subjects: frozenset[SubjectKey] = frozenset()

    def is_platform(self, subject: Any) -> bool:
        return (subject.kind, subject.name, subject.namespace) in self.platform_subjects

    def lists(self, subject: Any) -> bool:
        return (subject.kind, subject.name, subject.namespace) in self.listed_subjects


@dataclass(frozen=True)
class _Entry:
    role_kind: str
    role_name: str
    subjects: frozenset[SubjectKey]
    catalogue: str
    source: str  # where its citation is: "<source id> in <catalogue file>"
    note: str  # what the catalogue adds, e.g. the condition under which it is a real start


class PlatformCatalogue:
    """The platform objects of one kind of cluster."""

    def __init__(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._bindings: dict[Key, list[_Entry]] = {}
        self._roles: dict[Key, list[tuple[Rule, ...]]] = {}
        for name, document in documents:
            sources = document.get("sources", {})
            for role in document.get("roles", ()):
                key = (role["kind"], role.get("namespace", ""), role["name"])
                where = f"{name} catalogue: {role['kind']} {role['name']}"
                self._roles.setdefault(key, []).append(parse_rules(role.get("rules"), where))
            for binding in document.get("bindings", ()):
                key = (binding["kind"], binding.get("namespace", ""), binding["name"])
                self._bindings.setdefault(key, []).append(
                    _Entry(
                        role_kind=binding["roleRef"]["kind"],
                        role_name=binding["roleRef"]["name"],
                        subjects=_subjects(binding.get("subjects", ())),
                        catalogue=CATALOGUES.get(name, name),
                        source=_source_reference(name, binding.get("source", ""), sources),
                        note=binding.get("note", ""),
                    )
                )
        self._powers: dict[tuple[Key, str | None], frozenset] = {}

    def recognise(self, binding: Binding, rules: tuple[Rule, ...]) -> Recognition | None:
        """None when no catalogued object has the binding's kind, namespace and name; else which
        of its subjects it binds as the platform does. `rules` are what its role grants here."""
        entries = self._bindings.get((binding.kind, binding.namespace, binding.name))
        if not entries:
            return None
        what = f"{entries[0].catalogue}'s {binding.kind} {binding.name}"
        same_role = [
            e
            for e in entries
            if (e.role_kind, e.role_name) == (binding.role_kind, binding.role_name)
        ]
        if not same_role:
            return Recognition(frozenset(), f"named like {what}, but binds another role")
        scope = None if binding.cluster_wide else binding.namespace
        namespace = binding.namespace if binding.role_kind == "Role" else ""
        role = (binding.role_kind, namespace, binding.role_name)
        subjects = frozenset().union(*(e.subjects for e in same_role))
        if not _power_set(powers(rules, scope)) <= self._catalogued_powers(role, scope):
            return Recognition(
                frozenset(),
                f"looks like {what}, but its {binding.role_kind} {binding.role_name} grants "
                "more than the platform's",
                listed_subjects=subjects,
            )
        entry = same_role[0]
        source = f"; source: {entry.source}" if entry.source else ""
        note = f"; {entry.note}" if entry.note else ""
        return Recognition(
            subjects,
            f"named like {what}, which does not bind this subject",
            # The grant names its binding: said here is only whose object it matched.
            f"{entry.catalogue}'s own (its roleRef, subjects and role's grants){source}{note}",
            listed_subjects=subjects,
        )

    def _catalogued_powers(self, role: Key, scope: str | None) -> frozenset:
        if (role, scope) not in self._powers:
            variants = self._roles.get(role, [])
            self._powers[(role, scope)] = frozenset().union(
                *(_power_set(powers(rules, scope)) for rules in variants)
            )
        return self._powers[(role, scope)]


def _source_reference(catalogue: str, source: str, sources: dict[str, str]) -> str:
    """Where the catalogue's citation for an object is (mutguard/data/platform_rbac/), written
    in place of the citation: every grant of a large cluster would repeat it."""
    if source not in sources:
        return ""
    return f"{source} in {catalogue}.json"


def _subjects(raw: Iterable[dict[str, str]]) -> frozenset[SubjectKey]:
    return frozenset((s["kind"], s["name"], s.get("namespace", "")) for s in raw)


def _power_set(found: Iterable[Any]) -> frozenset[tuple[str, str]]:
    return frozenset((power.kind, power.reach.value) for power in found)


@cache
def catalogue_for(provider: str) -> PlatformCatalogue:
    """The catalogue of a provider's clusters (Kubernetes' own objects and the provider's)."""
    names = ("kubernetes", *PROVIDER_CATALOGUES.get(provider, ()))
    folder = resources.files("mutguard").joinpath("data", "platform_rbac")
    return PlatformCatalogue(
        (name, json.loads(folder.joinpath(f"{name}.json").read_text("utf-8"))) for name in names
    )
