"""Workloads as an attacker who compromised one of them sees them.

Input is `kubectl get pods,serviceaccounts,deployments,daemonsets,statefulsets,replicasets,jobs,
cronjobs -A -o json` (pods alone are enough). Pods are grouped by the controller that owns them,
so three replicas of a Deployment are one workload; controllers with no running pod are read from
their pod template. Secret values are never kept: only the names of env vars that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mutguard.errors import InputError
from mutguard.mut import (
    ADMIN,
    API,
    NODE_ANY,
    SERVICE_ACCOUNTS,
    USER,
    Edge,
    Start,
    StartKind,
)

# hostPath mounts that hand a container the node: (path, what it gives).
SENSITIVE_HOST_PATHS = {
    "/": "the node's whole filesystem",
    "/etc": "the node's configuration",
    "/root": "root's home on the node",
    "/proc": "every process on the node",
    "/var/lib/kubelet": "the kubelet's state and every pod's token on the node",
    "/var/run/docker.sock": "the container runtime",
    "/run/docker.sock": "the container runtime",
    "/var/run/containerd/containerd.sock": "the container runtime",
    "/run/containerd/containerd.sock": "the container runtime",
    "/var/run/crio/crio.sock": "the container runtime",
    "/var/lib/docker": "every container's filesystem",
    "/var/lib/containerd": "every container's filesystem",
}
# Capabilities that break a container out to its node (SYS_PTRACE needs hostPID to matter).
ESCAPE_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "DAC_READ_SEARCH", "SYS_RAWIO"})
SECRET_ENV_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY")
CONTROLLER_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob")


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    privileged: bool
    allow_privilege_escalation: bool | None
    runs_as_root: bool
    added_capabilities: frozenset[str]
    secret_env: tuple[str, ...]  # names of env vars with a literal secret value


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    namespace: str
    name: str
    service_account: str
    automount_token: bool
    host_pid: bool
    host_ipc: bool
    host_network: bool
    host_paths: tuple[str, ...]
    containers: tuple[Container, ...]
    nodes: tuple[str, ...]  # where its pods run; empty when none is scheduled

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def node(self) -> str:
        """Its attack-graph node."""
        return f"workload:{self.namespace}/{self.name}"

    @property
    def service_account_node(self) -> str:
        return f"sa:{self.namespace}/{self.service_account}"

    def sensitive_host_paths(self) -> list[str]:
        return [path for path in self.host_paths if _normalised(path) in SENSITIVE_HOST_PATHS]

    def escapes(self) -> list[str]:
        """Why code in this workload is root on its node, if it is."""
        reasons = [f"privileged container {c.name}" for c in self.containers if c.privileged]
        reasons += [
            f"hostPath {path} ({SENSITIVE_HOST_PATHS[_normalised(path)]})"
            for path in self.sensitive_host_paths()
        ]
        for container in self.containers:
            caps = sorted(container.added_capabilities & ESCAPE_CAPABILITIES)
            if self.host_pid and "SYS_PTRACE" in container.added_capabilities:
                caps.append("SYS_PTRACE with hostPID")
            if caps:
                reasons.append(f"container {container.name} adds {', '.join(caps)}")
        return reasons


@dataclass(frozen=True, slots=True)
class Workloads:
    items: tuple[Workload, ...]
    service_accounts: frozenset[tuple[str, str]]  # (namespace, name) of every known account

    @classmethod
    def from_kubectl(cls, document: Any) -> Workloads:
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise InputError("workloads.json: expected a kubectl List with an 'items' array")
        objects = document["items"]
        for index, item in enumerate(objects):
            if not isinstance(item, dict) or not isinstance(item.get("metadata"), dict):
                raise InputError(f"workloads.json: items[{index}] has no metadata")
        automount = {
            _key(item): item.get("automountServiceAccountToken")
            for item in objects
            if item.get("kind") == "ServiceAccount"
        }
        grouped: dict[tuple[str, str, str], list[dict]] = {}
        for item in objects:
            if item.get("kind") == "Pod":
                grouped.setdefault(_owner(item), []).append(item)
        for item in objects:  # controllers with no pod running are read from their template
            kind = item.get("kind")
            if kind in CONTROLLER_KINDS and kind != "ReplicaSet":
                key = (kind, *_key(item))
                if key not in grouped and not _owned_by_listed(item, grouped):
                    grouped[key] = [item]
        workloads = tuple(
            _workload(kind, namespace, name, found, automount)
            for (kind, namespace, name), found in sorted(grouped.items())
        )
        accounts = set(automount) | {(w.namespace, w.service_account) for w in workloads}
        return cls(workloads, frozenset(accounts))


def _normalised(path: str) -> str:
    return path.rstrip("/") or "/"


def _key(item: dict) -> tuple[str, str]:
    metadata = item["metadata"]
    return metadata.get("namespace") or "default", str(metadata.get("name", ""))


def _owner(pod: dict) -> tuple[str, str, str]:
    """The controller a pod belongs to (a ReplicaSet's Deployment, a Job's CronJob), or itself."""
    namespace, name = _key(pod)
    owners = [o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")]
    if not owners:
        return "Pod", namespace, name
    kind, owner = owners[0].get("kind", "Pod"), str(owners[0].get("name", name))
    template_hash = (pod["metadata"].get("labels") or {}).get("pod-template-hash")
    if kind == "ReplicaSet" and template_hash and owner.endswith(f"-{template_hash}"):
        return "Deployment", namespace, owner[: -len(template_hash) - 1]
    if kind == "Job" and re.search(r"-\d{8,}$", owner):
        return "CronJob", namespace, owner.rsplit("-", 1)[0]
    return kind, namespace, owner


def _owned_by_listed(item: dict, grouped: dict) -> bool:
    namespace, _ = _key(item)
    return any(
        (o.get("kind"), namespace, o.get("name")) in grouped
        for o in item["metadata"].get("ownerReferences") or []
    )


def _pod_spec(item: dict) -> dict:
    spec = item.get("spec") or {}
    if item.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if item.get("kind") != "Pod":
        spec = (spec.get("template") or {}).get("spec") or {}
    return spec


def _workload(kind: str, namespace: str, name: str, items: list[dict], automount: dict) -> Workload:
    spec = _pod_spec(items[0])
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    mounted = spec.get("automountServiceAccountToken")
    if mounted is None:
        mounted = automount.get((namespace, account))
    pod_context = spec.get("securityContext") or {}
    containers = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    return Workload(
        kind=kind,
        namespace=namespace,
        name=name,
        service_account=account,
        automount_token=mounted is not False,
        host_pid=spec.get("hostPID") is True,
        host_ipc=spec.get("hostIPC") is True,
        host_network=spec.get("hostNetwork") is True,
        host_paths=tuple(
            str(volume["hostPath"].get("path", ""))
            for volume in spec.get("volumes") or []
            if isinstance(volume.get("hostPath"), dict)
        ),
        containers=tuple(_container(c, pod_context) for c in containers),
        nodes=tuple(
            sorted({n for item in items if (n := (item.get("spec") or {}).get("nodeName"))})
        ),
    )


def _container(raw: dict, pod_context: dict) -> Container:
    context = raw.get("securityContext") or {}

    def setting(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    user, non_root = setting("runAsUser"), setting("runAsNonRoot")
    capabilities = (context.get("capabilities") or {}).get("add") or []
    return Container(
        name=str(raw.get("name", "")),
        image=str(raw.get("image", "")),
        privileged=context.get("privileged") is True,
        allow_privilege_escalation=context.get("allowPrivilegeEscalation"),
        runs_as_root=user == 0 or (user is None and non_root is not True),
        added_capabilities=frozenset(str(c).upper().removeprefix("CAP_") for c in capabilities),
        secret_env=tuple(_secret_env(raw.get("env") or [])),
    )


def _secret_env(env: Iterable[dict]) -> Iterable[str]:
    for variable in env:
        name, value = str(variable.get("name", "")), variable.get("value")
        if value and SECRET_ENV_NAME.search(name.upper()) and not str(value).startswith("$("):
            yield name


def attack_edges(workloads: Workloads, owned_by_findings: frozenset[str]) -> list[Edge]:
    """What holds in the graph once workloads are known, before any mistake.

    A workload reaches the API and, with its token mounted, its service account; escaping to
    its node takes one mistake; root on a node reads the tokens of the pods it runs, and can
    place a pod on any node; whoever runs pods in a namespace can run them as any of its
    service accounts. Token edges of accounts in `owned_by_findings` are left to the finding
    that reports them, so that fixing it shows its gain.
    """
    edges: list[Edge] = []
    for namespace, name in sorted(workloads.service_accounts):
        account = f"sa:{namespace}/{name}"
        edges += [
            Edge(account, USER, 0, "authentication", "a service account is an identity"),
            Edge(account, SERVICE_ACCOUNTS, 0, "authentication", "it is a service account"),
            Edge(
                f"namespace:{namespace}",
                account,
                0,
                "authorization",
                f"a pod in {namespace} can run as {name}",
            ),
        ]
    nodes = {NODE_ANY}
    for workload in workloads.items:
        edges.append(Edge(workload.node, API, 0, "network", f"{workload} is inside the cluster"))
        if workload.automount_token and workload.service_account_node not in owned_by_findings:
            edges.append(token_edge(workload))
        for node in node_names(workload):
            nodes.add(node)
            edges.append(
                Edge(
                    workload.node,
                    node,
                    1,
                    "escape",
                    f"escaping {workload} to {node} needs one mistake",
                )
            )
            if workload.automount_token and node != NODE_ANY:
                reads = f"root on {node} reads the token of {workload}"
                edges.append(Edge(node, workload.service_account_node, 0, "credential", reads))
    for node in sorted(nodes - {NODE_ANY}):
        edges.append(Edge(NODE_ANY, node, 0, "scheduling", f"a pod can be placed on {node}"))
    for node in sorted(nodes):
        edges.append(
            Edge(
                node,
                ADMIN,
                1,
                "authorization",
                f"root on {node} is not yet admin: one more mistake (an admin token on it)",
            )
        )
    return list(dict.fromkeys(edges))


def node_names(workload: Workload) -> list[str]:
    return [f"node:{n}" for n in workload.nodes] or [NODE_ANY]


def token_edge(workload: Workload) -> Edge:
    return Edge(
        workload.node,
        workload.service_account_node,
        0,
        "authentication",
        f"{workload} mounts the token of service account {workload.service_account}",
    )


def start(workload: Workload) -> Start:
    return Start(
        StartKind.WORKLOAD, workload.node, workload.node, f"the app in {workload} is exploited"
    )
