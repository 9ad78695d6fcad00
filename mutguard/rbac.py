"""Kubernetes RBAC as the API server's RBAC authorizer reads it.

Input is `kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o json` (a v1 List).
Rule matching follows the authorizer exactly: `*` in verbs, apiGroups and resources; `*/sub` and
`res/sub` for subresources; resourceNames narrowing; nonResourceURLs with a trailing `*` prefix.
Aggregated ClusterRoles take the rules of every ClusterRole their selectors match.

A binding's roleRef is resolved when a request is authorized (the rule resolver of
pkg/registry/rbac/validation/rule.go skips a binding whose role is missing), and the binding
registry stores a roleRef to a role that does not exist yet, so a dangling binding grants nothing
today and everything its role will hold once someone creates it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mutguard.errors import InputError
from mutguard.mut import ANONYMOUS, AUTHENTICATED, SERVICE_ACCOUNTS

if TYPE_CHECKING:
    from mutguard.platform_rbac import PlatformCatalogue, Recognition

ANONYMOUS_USER = "system:anonymous"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
AUTHENTICATED_GROUP = "system:authenticated"
MASTERS_GROUP = "system:masters"

ROLE_KINDS = ("ClusterRole", "Role")
BINDING_KINDS = ("ClusterRoleBinding", "RoleBinding")
NAMESPACED_KINDS = ("Role", "RoleBinding")


_PUBLIC_NODES = {
    ("User", ANONYMOUS_USER): ANONYMOUS,
    ("Group", UNAUTHENTICATED_GROUP): ANONYMOUS,
    ("Group", AUTHENTICATED_GROUP): AUTHENTICATED,
    ("Group", "system:serviceaccounts"): SERVICE_ACCOUNTS,
}


def subject_node(subject: Subject) -> str:
    """The attack-graph node of an RBAC subject."""
    public = _PUBLIC_NODES.get((subject.kind, subject.name))
    if public:
        return public
    if subject.kind == "ServiceAccount":
        return f"sa:{subject.namespace}/{subject.name}"
    if subject.kind == "Group" and subject.name.startswith("system:serviceaccounts:"):
        return SERVICE_ACCOUNTS  # every service account of one namespace: any pod there
    return f"{subject.kind.lower()}:{subject.name}"


def is_public(subject: Subject) -> bool:
    return subject_node(subject) in (ANONYMOUS, AUTHENTICATED, SERVICE_ACCOUNTS)


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: frozenset[str] = frozenset()

    def allows(self, verb: str, group: str, resource: str, subresource: str = "") -> bool:
        """Whether this rule allows `verb` on every object of group/resource[/subresource]."""
        if self.resource_names:
            return False
        return self.allows_named(verb, group, resource, subresource)

    def allows_named(self, verb: str, group: str, resource: str, subresource: str = "") -> bool:
        """Whether this rule allows `verb` on at least some objects (resourceNames ignored)."""
        if not ("*" in self.verbs or verb in self.verbs):
            return False
        if not ("*" in self.api_groups or group in self.api_groups):
            return False
        combined = f"{resource}/{subresource}" if subresource else resource
        return (
            "*" in self.resources
            or combined in self.resources
            or (bool(subresource) and f"*/{subresource}" in self.resources)
        )

    def allows_url(self, verb: str, url: str) -> bool:
        if not ("*" in self.verbs or verb in self.verbs):
            return False
        return any(
            pattern == url or (pattern.endswith("*") and url.startswith(pattern[:-1]))
            for pattern in self.non_resource_urls
        )


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Role:
    kind: str
    name: str
    namespace: str
    rules: tuple[Rule, ...]
    labels: Mapping[str, str]
    aggregation: (
        tuple[Mapping[str, Any], ...] | None
    )  # clusterRoleSelectors, None if not aggregated


@dataclass(frozen=True, slots=True)
class Binding:
    kind: str
    name: str
    namespace: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    @property
    def cluster_wide(self) -> bool:
        return self.kind == "ClusterRoleBinding"

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def _strings(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InputError(f"{where}: expected a list of strings, got {value!r}")
    return frozenset(value)


def _string_map(value: Any, where: str) -> dict[str, str]:
    """Labels or matchLabels: a value of another type would silently stop a selector matching."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InputError(f"{where} must be an object of strings")
    return value


def _list(value: Any, where: str) -> list:
    """A list, or null for none; any other type is refused, never read as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{where} must be a list")
    return value


def parse_rules(raw: Any, where: str) -> tuple[Rule, ...]:
    """A role's `rules` (null for none), each checked as the API server's validation would."""
    return tuple(_rule(rule, f"{where}.rules[{i}]") for i, rule in enumerate(_list(raw, where)))


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a rule must be an object")
    return Rule(
        verbs=_strings(raw.get("verbs"), f"{where}.verbs"),
        api_groups=_strings(raw.get("apiGroups"), f"{where}.apiGroups"),
        resources=_strings(raw.get("resources"), f"{where}.resources"),
        resource_names=_strings(raw.get("resourceNames"), f"{where}.resourceNames"),
        non_resource_urls=_strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs"),
    )


_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or ()
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


class RbacPolicy:
    """All roles and bindings of one cluster, indexed for the questions the checks ask.

    A real API server never lists two objects of one kind, namespace and name, but an edited or
    merged rbac.json can. Every copy is kept and judged: a binding counts however often it
    appears, and a binding of a role that appears twice gets the rules of both copies, the
    worst case of whichever copy is real. `duplicates` says so, one sentence per duplicate.

    An object with a field of the wrong shape is skipped alone, never the whole document: it is
    in `unread`, naming the object and the field, and its grants are not counted (so the checks
    that found nothing say they cannot tell, and MUT is an upper bound).
    """

    def __init__(
        self,
        roles: Iterable[Role],
        bindings: Iterable[Binding],
        unread: Iterable[UnreadObject] = (),
        platform: PlatformCatalogue | None = None,
    ) -> None:
        self.roles: dict[tuple[str, str, str], list[Role]] = defaultdict(list)
        for role in roles:
            self.roles[(role.kind, role.namespace, role.name)].append(role)
        self.bindings: list[Binding] = list(bindings)
        self.duplicates: list[str] = _duplicates(
            [
                (kind, namespace, name)
                for (kind, namespace, name), copies in self.roles.items()
                for _ in copies
            ]
            + [(b.kind, b.namespace, b.name) for b in self.bindings]
        )
        self.unread: list[UnreadObject] = list(unread)
        self.platform = platform
        self._recognised: dict[Binding, Recognition | None] = {}
        self._aggregated: dict[str, tuple[Rule, ...]] = {}
        self._grants: list[Grant] | None = None

    @classmethod
    def from_kubectl(
        cls, document: Any, platform: PlatformCatalogue | None = None, *, let_go: bool = False
    ) -> RbacPolicy:
        """The policy of a kubectl List. With `let_go`, each raw object is taken out of the List
        once read, so that a large cluster's parsed policy reuses the memory its document held
        (a scan reads a source's documents once: scan.evaluate)."""
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise InputError("rbac.json: expected a kubectl List with an 'items' array")
        roles: list[Role] = []
        bindings: list[Binding] = []
        unread: list[UnreadObject] = []
        # Many bindings name the same subjects: each distinct one (and list of them) is kept once.
        shared: dict[Any, Any] = {}
        items = document["items"]
        for index, item in enumerate(items):
            if let_go:
                items[index] = None
            kind = item.get("kind") if isinstance(item, dict) else None
            if isinstance(item, dict) and kind not in ROLE_KINDS + BINDING_KINDS:
                continue  # other kinds are not RBAC; a mixed List is fine
            try:
                parsed = _parse_object(item, index, shared)
            except InputError as exc:
                unread.append(_unread(item, index, str(exc)))
                continue
            (roles if isinstance(parsed, Role) else bindings).append(parsed)
        return cls(roles, bindings, unread, platform)

    def role_of(self, binding: Binding) -> list[Role]:
        """Every copy of the role a binding names; empty when it does not exist."""
        namespace = binding.namespace if binding.role_kind == "Role" else ""
        return self.roles.get((binding.role_kind, namespace, binding.role_name), [])

    def rules_of(self, binding: Binding) -> tuple[Rule, ...] | None:
        """The rules a binding grants, or None when its role does not exist (grants nothing)."""
        namespace = binding.namespace if binding.role_kind == "Role" else ""
        return self.rules_of_role(binding.role_kind, namespace, binding.role_name)

    def rules_of_role(self, kind: str, namespace: str, name: str) -> tuple[Rule, ...] | None:
        """The rules of a role (a ClusterRole's aggregated ones included), None if missing."""
        copies = self.roles.get((kind, namespace if kind == "Role" else "", name), [])
        if not copies:
            return None
        if all(copy.aggregation is None for copy in copies):
            return tuple(dict.fromkeys(rule for copy in copies for rule in copy.rules))
        if name not in self._aggregated:
            self._aggregated[name] = self._aggregate(copies)
        return self._aggregated[name]

    def _aggregate(self, copies: list[Role]) -> tuple[Rule, ...]:
        rules = [rule for copy in copies for rule in copy.rules]
        selectors = [selector for copy in copies for selector in copy.aggregation or ()]
        for others in self.roles.values():
            for other in others:
                if other.kind != "ClusterRole" or other in copies:
                    continue
                if any(_label_selector_matches(selector, other.labels) for selector in selectors):
                    rules.extend(other.rules)
        return tuple(dict.fromkeys(rules))

    def recognition(self, binding: Binding) -> Recognition | None:
        """Whether the platform's catalogue knows this binding: as its own, as a look-alike of
        one of its own, or (None) not at all."""
        if self.platform is None:
            return None
        if binding not in self._recognised:
            rules = self.rules_of(binding) or ()
            self._recognised[binding] = self.platform.recognise(binding, rules)
        return self._recognised[binding]

    def is_platform(self, binding: Binding, subject: Subject) -> bool:
        """Whether this binding gives this subject what the platform's own binding does."""
        recognised = self.recognition(binding)
        return recognised is not None and recognised.is_platform(subject)

    def dangling_bindings(self) -> list[Binding]:
        """Bindings whose role does not exist: live once someone creates it. The platform's own
        (a catalogued binding whose role this cluster does not show) are the platform's affair."""
        return [
            b
            for b in self.bindings
            if not self.role_of(b) and any(not self.is_platform(b, s) for s in b.subjects)
        ]

    def role_may_be_unread(self, binding: Binding) -> bool:
        """Whether the role a binding names could be one of the objects that were skipped."""
        namespace = binding.namespace if binding.role_kind == "Role" else ""
        return any(
            skipped.kind in ("", binding.role_kind)
            and skipped.name in ("", binding.role_name)
            and skipped.namespace in ("", namespace)
            for skipped in self.unread
        )

    def powerful_service_accounts(self) -> frozenset[str]:
        """Graph nodes of the service accounts that hold a power reaching somewhere."""
        return frozenset(
            subject_node(g.subject)
            for g in self.grants()
            if g.subject.kind == "ServiceAccount" and g.power.reach is not Reach.NONE
        )

    def grants(self) -> list[Grant]:
        """Every dangerous power every subject holds (computed once; the checks share it)."""
        if self._grants is None:
            self._grants = _grants(self)
        return self._grants


_COUNTS = {2: "two", 3: "three"}


def _duplicates(keys: list[tuple[str, str, str]]) -> list[str]:
    counted: dict[tuple[str, str, str], int] = {}
    for key in keys:
        counted[key] = counted.get(key, 0) + 1
    return [
        f"rbac.json holds {_COUNTS.get(count, str(count))} {kind}s named "
        f"{_qualified(namespace, name)}: a real API server never returns duplicates; "
        f"{'both' if count == 2 else 'all'} are judged"
        for (kind, namespace, name), count in counted.items()
        if count > 1
    ]


@dataclass(frozen=True, slots=True)
class UnreadObject:
    """A role or binding skipped because a field it is judged by has the wrong shape."""

    kind: str  # "" when the item is not even an object
    namespace: str
    name: str  # "" when the name itself is unreadable
    reason: str  # names the object and the field


def _parse_object(item: Any, index: int, shared: dict[Any, Any]) -> Role | Binding:
    if not isinstance(item, dict):
        raise InputError(f"items[{index}] is not an object")
    kind = item["kind"]
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputError(f"{kind} items[{index}]: metadata must be an object")
    name = metadata.get("name")
    namespace = metadata.get("namespace") or ""
    where = f"{kind} {_qualified(namespace, name) or f'items[{index}]'}"
    if not isinstance(name, str):
        raise InputError(f"{where}: metadata.name is missing")
    if not isinstance(namespace, str):
        raise InputError(f"{where}: metadata.namespace must be a string")
    # Validated for bindings too (the API server refuses such an object); only roles' labels
    # are read, by aggregation.
    labels = _string_map(metadata.get("labels"), f"{where}: metadata.labels")
    if kind in ROLE_KINDS:
        return _parse_role(item, kind, name, namespace, labels, where)
    return _parse_binding(item, kind, name, namespace, where, shared)


def _unread(item: Any, index: int, reason: str) -> UnreadObject:
    metadata = item.get("metadata") if isinstance(item, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    kind = item.get("kind") if isinstance(item, dict) else ""
    return UnreadObject(
        kind=kind if isinstance(kind, str) else "",
        namespace=namespace if isinstance(namespace, str) and kind in NAMESPACED_KINDS else "",
        name=name if isinstance(name, str) else "",
        reason=reason,
    )


def _parse_role(
    item: dict, kind: str, name: str, namespace: str, labels: dict[str, str], where: str
) -> Role:
    rules = parse_rules(item.get("rules"), where)
    aggregation = None
    if kind == "ClusterRole" and item.get("aggregationRule") is not None:
        aggregation = _aggregation(item["aggregationRule"], f"{where}.aggregationRule")
    return Role(
        kind=kind,
        name=name,
        namespace=namespace if kind == "Role" else "",
        rules=rules,
        labels=labels,
        aggregation=aggregation,
    )


def _aggregation(rule: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    """The clusterRoleSelectors of an aggregationRule, checked as far as they are read."""
    if not isinstance(rule, dict):
        raise InputError(f"{where}: must be an object")
    selectors = _list(rule.get("clusterRoleSelectors"), f"{where}.clusterRoleSelectors:")
    for i, selector in enumerate(selectors):
        at = f"{where}.clusterRoleSelectors[{i}]"
        if not isinstance(selector, dict):
            raise InputError(f"{at}: must be an object")
        _string_map(selector.get("matchLabels"), f"{at}.matchLabels:")
        expressions = _list(selector.get("matchExpressions"), f"{at}.matchExpressions:")
        if not all(isinstance(e, dict) for e in expressions):
            raise InputError(f"{at}.matchExpressions: must be a list of objects")
        for j, expression in enumerate(expressions):
            if not isinstance(expression.get("key"), str):
                raise InputError(f"{at}.matchExpressions[{j}].key: must be a string")
            _strings(expression.get("values"), f"{at}.matchExpressions[{j}].values")
            if expression.get("operator") not in _SELECTOR_OPERATORS:
                raise InputError(
                    f"{at}.matchExpressions[{j}].operator: unknown label selector operator "
                    f"{expression.get('operator')!r}"
                )
    return tuple(selectors)


def _qualified(namespace: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        return ""
    return f"{namespace}/{name}" if namespace and isinstance(namespace, str) else name


def _parse_binding(
    item: dict, kind: str, name: str, namespace: str, where: str, shared: dict[Any, Any]
) -> Binding:
    role_ref = item.get("roleRef")
    if not isinstance(role_ref, dict) or role_ref.get("kind") not in ROLE_KINDS:
        raise InputError(f"{where}: roleRef must name a ClusterRole or Role")
    # A name that is not a string would read as a role that does not exist: a hidden grant.
    if not isinstance(role_ref.get("name"), str) or not role_ref["name"]:
        raise InputError(f"{where}: roleRef.name must be a non-empty string")
    subjects = []
    for i, raw in enumerate(_list(item.get("subjects"), f"{where}: subjects")):
        if not isinstance(raw, dict) or raw.get("kind") not in ("User", "Group", "ServiceAccount"):
            raise InputError(f"{where}.subjects[{i}]: kind must be User, Group or ServiceAccount")
        if not isinstance(raw.get("name"), str):
            raise InputError(f"{where}.subjects[{i}].name: must be a string")
        namespace_of_subject = raw.get("namespace") or ""
        if not isinstance(namespace_of_subject, str):
            raise InputError(f"{where}.subjects[{i}].namespace: must be a string")
        subject = Subject(raw["kind"], raw["name"], namespace_of_subject)
        subjects.append(shared.setdefault(subject, subject))
    distinct = tuple(subjects)
    return Binding(
        kind=kind,
        name=name,
        namespace=namespace if kind == "RoleBinding" else "",
        role_kind=role_ref["kind"],
        role_name=role_ref["name"],
        subjects=shared.setdefault(distinct, distinct),
    )


class Reach(StrEnum):
    """Where a power takes its holder in the attack graph."""

    ADMIN = "admin"  # admin-equivalent on its own
    NAMESPACE = "namespace"  # acts as any service account of the namespace
    NODE = "node"  # root on a node of the attacker's choosing
    NONE = "none"  # dangerous, but no path to admin by itself


@dataclass(frozen=True, slots=True)
class Power:
    kind: str  # the check that reports it
    what: str
    reach: Reach


RBAC_API = "rbac.authorization.k8s.io"
WORKLOAD_KINDS = (
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
)
WRITE_VERBS = ("create", "update", "patch")
KUBE_SYSTEM = "kube-system"


def powers(rules: Iterable[Rule], namespace: str | None = None) -> list[Power]:
    """The dangerous powers rules grant, cluster-wide (namespace None) or in one namespace.

    What each power reaches follows the admin-equivalent of docs/architecture.md (MUT): read
    every secret, run privileged pods on any node, or escalate / bind / impersonate to get there.
    kube-system's service accounts include the controllers', which can escalate, so power over
    that namespace is admin-equivalent.
    """
    rules = tuple(rules)

    def can(verb: str, group: str, resource: str, sub: str = "", named: bool = False) -> bool:
        check = Rule.allows_named if named else Rule.allows
        return any(check(rule, verb, group, resource, sub) for rule in rules)

    def any_verb(verbs: Iterable[str], group: str, resource: str, sub: str = "") -> bool:
        return any(can(verb, group, resource, sub) for verb in verbs)

    cluster = namespace is None
    own_namespace = Reach.ADMIN if cluster or namespace == KUBE_SYSTEM else Reach.NAMESPACE
    found: list[Power] = []
    if can("*", "*", "*"):
        return [Power("rbac.wildcard", "use every verb on every resource", own_namespace)]
    if any_verb(("get", "list", "watch"), "", "secrets"):
        found.append(
            Power("rbac.secrets_read", "read every secret", Reach.ADMIN if cluster else Reach.NONE)
        )
    found += _pod_powers(can, any_verb, own_namespace)
    found += _escalation_powers(can, any_verb, cluster, own_namespace)
    found += _identity_powers(can, cluster, own_namespace)
    if cluster:
        found += _cluster_only_powers(can, any_verb)
    return found


def _pod_powers(can, any_verb, reach: Reach) -> list[Power]:
    """Running pods, and reaching into running ones."""
    found: list[Power] = []
    creates_pods = any(can("create", group, resource) for group, resource in WORKLOAD_KINDS)
    if creates_pods:
        found.append(Power("rbac.workload_create", "run pods as any service account", reach))
    # A request for /api/v1/namespaces/N carries namespace N (the apiserver's RequestInfoFactory),
    # so a RoleBinding in N with write verbs on namespaces covers the Namespace object N: its
    # Pod Security labels, and with them the pods admission lets through. (resourceNames are
    # not told apart here: a RoleBinding can reach no other namespace object anyway.)
    if (
        reach is Reach.NAMESPACE
        and creates_pods
        and any(can(verb, "", "namespaces", named=True) for verb in ("update", "patch"))
    ):
        found.append(
            Power(
                "rbac.namespace_relabel",
                "relabel its namespace's Pod Security level and run privileged pods",
                Reach.NODE,
            )
        )
    if any(
        any_verb(("create", "get"), "", "pods", sub) for sub in ("exec", "attach", "portforward")
    ):
        found.append(Power("rbac.pod_exec", "exec into or attach to running pods", reach))
    return found


def _identity_powers(can, cluster: bool, reach: Reach) -> list[Power]:
    """Acting as another identity: impersonating it, or minting its tokens."""
    found: list[Power] = []
    # The impersonation filter asks for users, groups and uids without a namespace, which no
    # RoleBinding matches, and for a service account in its own namespace.
    impersonated = [r for r in ("users", "groups") if cluster and can("impersonate", "", r)]
    if impersonated:
        found.append(
            Power("rbac.impersonate", f"impersonate {', '.join(impersonated)}", Reach.ADMIN)
        )
    elif can("impersonate", "", "serviceaccounts"):
        found.append(Power("rbac.impersonate", "impersonate service accounts", reach))
    if can("create", "", "serviceaccounts", "token"):
        found.append(Power("rbac.token_create", "create service-account tokens", reach))
    return found


def _escalation_powers(can, any_verb, cluster: bool, reach: Reach) -> list[Power]:
    """Writing RBAC past one's own permissions. `escalate` lets a role be written with rules its
    writer lacks; `bind` lets a binding name a role whose rules its writer lacks, and the binding
    registry asks for it on the role's kind in the binding's namespace, so `bind` on clusterroles
    through a RoleBinding lets RoleBindings there name any ClusterRole. Both need a right to write
    what they apply to: bind alone grants nothing. Through a RoleBinding, clusterroles and
    clusterrolebindings (cluster-scoped) cannot be written at all."""
    role_kinds = ("clusterroles", "roles") if cluster else ("roles",)
    binding_kinds = ("clusterrolebindings", "rolebindings") if cluster else ("rolebindings",)
    for role_kind in role_kinds:
        if can("escalate", RBAC_API, role_kind) and any_verb(WRITE_VERBS, RBAC_API, role_kind):
            return [Power("rbac.escalate_bind", f"escalate {role_kind}", reach)]
    writable = [kind for kind in binding_kinds if any_verb(WRITE_VERBS, RBAC_API, kind)]
    for role_kind in ("clusterroles", "roles"):
        if writable and can("bind", RBAC_API, role_kind):
            # A Role can only be named by a RoleBinding; a ClusterRole by either kind.
            if role_kind == "roles" and "rolebindings" not in writable:
                continue
            return [Power("rbac.escalate_bind", f"bind {role_kind}", reach)]
    return []


_REACH_ORDER = (Reach.ADMIN, Reach.NODE, Reach.NAMESPACE)


def _bind_named_powers(
    policy: RbacPolicy, rules: Iterable[Rule], scope: str | None, found: list[Power]
) -> list[Power]:
    """`bind` limited by resourceNames: the binding registry asks for bind on the named role
    (BindingAuthorized), so its holder can bind those roles, and only those, to anyone, itself
    included; the power is the strongest any of them grants where a binding it may write puts
    it. Nothing when an unrestricted `bind` or `escalate` already counts."""
    rules = tuple(rules)
    limited = any(r.resource_names and ({"bind", "*"} & r.verbs) for r in rules)
    if not limited or any(power.kind == "rbac.escalate_bind" for power in found):
        return []
    kinds = ("clusterrolebindings", "rolebindings") if scope is None else ("rolebindings",)
    writable = {k for k in kinds for r in rules for v in WRITE_VERBS if r.allows(v, RBAC_API, k)}
    options: list[tuple[str, str, tuple[Rule, ...], str | None]] = []
    for kind, resource in (("ClusterRole", "clusterroles"), ("Role", "roles")):
        for name in sorted(
            {
                name
                for rule in rules
                if rule.resource_names and rule.allows_named("bind", RBAC_API, resource)
                for name in rule.resource_names
            }
        ):
            if kind == "ClusterRole":
                bound = policy.rules_of_role(kind, "", name) or ()
                if "clusterrolebindings" in writable:
                    options.append((kind, name, bound, None))
                if "rolebindings" in writable:  # cluster-wide, a RoleBinding in kube-system
                    options.append((kind, name, bound, scope or KUBE_SYSTEM))
            elif "rolebindings" in writable:  # a Role is named only from its own namespace
                options += [
                    (kind, name, policy.rules_of_role(kind, namespace, name) or (), namespace)
                    for (role_kind, namespace, role_name) in policy.roles
                    if (role_kind, role_name) == (kind, name) and scope in (None, namespace)
                ]
    candidates = [
        Power("rbac.escalate_bind", f"bind {kind} {name}, which can {power.what}", power.reach)
        for kind, name, bound, place in options
        for power in powers(bound, place)
        if power.reach in _REACH_ORDER
    ]
    return sorted(candidates, key=lambda p: _REACH_ORDER.index(p.reach))[:1]


def _cluster_only_powers(can, any_verb) -> list[Power]:
    found = []
    if any_verb(("get", "create"), "", "nodes", "proxy"):
        found.append(
            Power("rbac.nodes_proxy", "run commands through any kubelet (nodes/proxy)", Reach.ADMIN)
        )
    csr = "certificates.k8s.io"
    if (
        can("create", csr, "certificatesigningrequests")
        and any_verb(("update", "patch"), csr, "certificatesigningrequests", "approval")
        and can("approve", csr, "signers", named=True)
    ):
        found.append(
            Power("rbac.csr_approve", "create and approve client certificates", Reach.ADMIN)
        )
    admission = "admissionregistration.k8s.io"
    if any_verb(WRITE_VERBS, admission, "mutatingwebhookconfigurations"):
        found.append(Power("rbac.webhook_write", "write mutating admission webhooks", Reach.ADMIN))
    elif any_verb(WRITE_VERBS, admission, "validatingwebhookconfigurations"):
        found.append(Power("rbac.webhook_write", "write validating admission webhooks", Reach.NONE))
    if can("create", "", "persistentvolumes"):
        found.append(Power("rbac.pv_create", "create persistent volumes (hostPath)", Reach.NODE))
    if any_verb(("update", "patch"), "", "nodes"):
        found.append(Power("rbac.node_patch", "patch nodes (labels, taints)", Reach.NONE))
    return found


@dataclass(frozen=True, slots=True)
class Grant:
    """One subject holding one power through one binding (namespace None: cluster-wide), or
    through that binding `together_with` others when no single one of them grants it."""

    subject: Subject
    binding: Binding
    power: Power
    namespace: str | None
    together_with: tuple[Binding, ...] = ()
    platform: bool = False  # every binding it comes through is the platform's own
    # What the platform catalogue says: why the binding is the platform's, or why one named
    # like a platform object is not taken for one.
    note: str = ""


def _grants(policy: RbacPolicy) -> list[Grant]:
    """Every dangerous power every subject holds; each role is analysed once per kind of scope."""
    cache: dict[tuple, list[Power]] = {}
    found: list[Grant] = []
    for binding in policy.bindings:
        rules = policy.rules_of(binding)
        if not rules or not binding.subjects:
            continue
        scope = None if binding.cluster_wide else binding.namespace
        scope_class = scope if scope in (None, KUBE_SYSTEM) else "namespace"
        key = (binding.role_kind, binding.namespace, binding.role_name, scope_class)
        if binding.role_kind == "ClusterRole":
            key = (binding.role_kind, "", binding.role_name, scope_class)
        if key not in cache:
            cache[key] = powers(rules, scope)
        held = cache[key] + _bind_named_powers(policy, rules, scope, cache[key])
        recognised = policy.recognition(binding)
        for subject in binding.subjects:
            platform = recognised is not None and recognised.is_platform(subject)
            note = ""
            if recognised is not None:
                note = recognised.why if platform else recognised.look_alike
            found.extend(
                Grant(subject, binding, power, scope, platform=platform, note=note)
                for power in held
            )
    found = _held_through_the_platform_anyway(policy, found)
    return found + _combined_grants(policy, found)


def _held_through_the_platform_anyway(policy: RbacPolicy, found: list[Grant]) -> list[Grant]:
    """A catalogued binding whose role grants more than the catalogue shows (or whose role no
    source shows) gives a subject the catalogue lists for it nothing new when the platform's own
    bindings already give that subject the same power: EKS binds User eks:addon-manager both to
    cluster-admin and to a ClusterRole eks:addon-manager. Such a grant is the platform's, and
    says why; anyone else the binding names is judged as ever."""
    through = {(g.subject, g.namespace, g.power.kind): g.binding for g in found if g.platform}
    kept = []
    for grant in found:
        recognised = policy.recognition(grant.binding)
        already = through.get((grant.subject, None, grant.power.kind)) or through.get(
            (grant.subject, grant.namespace, grant.power.kind)
        )
        if (
            grant.platform
            or recognised is None
            or not recognised.lists(grant.subject)
            or not already
        ):
            kept.append(grant)
            continue
        note = (
            f"{recognised.look_alike}; {grant.subject} holds this power through the platform's "
            f"{already} anyway"
        )
        kept.append(replace(grant, platform=True, note=note))
    return kept


def _groups_of(subject: Subject) -> list[Subject]:
    """The groups the authenticator puts a subject in whatever its identity provider says:
    every user in system:authenticated, every service account also in system:serviceaccounts
    and system:serviceaccounts:<namespace> (k8s.io/apiserver/pkg/authentication/serviceaccount,
    and the authenticated-group adder of the authenticator chain)."""
    if subject.kind == "ServiceAccount":
        names = ("system:serviceaccounts", f"system:serviceaccounts:{subject.namespace}")
        return [Subject("Group", name) for name in (*names, AUTHENTICATED_GROUP)]
    if subject.kind == "User" and subject.name != ANONYMOUS_USER:
        return [Subject("Group", AUTHENTICATED_GROUP)]
    return []


def _combined_grants(policy: RbacPolicy, single: list[Grant]) -> list[Grant]:
    """Powers a subject holds only through several bindings at once (its own and its groups'):
    the authorizer allows a request when any rule of any binding that applies matches
    (plugin/pkg/auth/authorizer/rbac: VisitRulesFor walks every ClusterRoleBinding, then every
    RoleBinding of the request's namespace), so `bind` from one binding and `create
    clusterrolebindings` from another are together cluster-admin."""
    applying: dict[Subject, dict[str | None, list[Binding]]] = defaultdict(dict)
    for binding in policy.bindings:
        if binding.subjects and policy.rules_of(binding):
            scope = None if binding.cluster_wide else binding.namespace
            for subject in binding.subjects:
                applying[subject].setdefault(scope, []).append(binding)
    held = {(g.subject, g.namespace, g.power.kind) for g in single}
    found: list[Grant] = []
    # Groups first: what a group holds through several bindings is the group's, not each member's.
    for subject in sorted(applying, key=lambda s: s.kind != "Group"):
        holders = [subject, *_groups_of(subject)]
        sources = [applying[holder] for holder in holders if holder in applying]
        own = {b for bindings in applying[subject].values() for b in bindings}
        for scope in {scope for by_scope in sources for scope in by_scope}:
            bindings = list(
                dict.fromkeys(
                    binding
                    for by_scope in sources
                    for at in dict.fromkeys((scope, None))
                    for binding in by_scope.get(at, ())
                )
            )
            mine = [b for b in bindings if b in own]
            if len(bindings) < 2 or not mine:
                continue
            rules = [rule for binding in bindings for rule in policy.rules_of(binding) or ()]
            found_here = powers(rules, scope)
            for power in found_here + _bind_named_powers(policy, rules, scope, found_here):
                if any((h, at, power.kind) in held for h in holders for at in (scope, None)):
                    continue
                first = next((b for b in mine if not policy.is_platform(b, subject)), mine[0])
                others = tuple(b for b in bindings if b is not first)
                platform = all(
                    any(policy.is_platform(b, s) for s in (subject, *holders)) for b in bindings
                )
                grant = Grant(subject, first, power, scope, others, platform=platform)
                found.append(grant)
                held.add((subject, scope, power.kind))
    return found
