"""Workloads as an attacker who compromised one of them sees them.

Input is `kubectl get pods,serviceaccounts,deployments,daemonsets,statefulsets,replicasets,jobs,
cronjobs -A -o json` (pods alone are enough). Pods are grouped by the controller that owns them,
so three replicas of a Deployment are one workload; controllers with no running pod are read from
their pod template. Secret values are never kept: only the names of env vars that hold them, and
which detector matched.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
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

# Capabilities that break a container out to its node (SYS_PTRACE needs hostPID to matter).
ESCAPE_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "DAC_READ_SEARCH", "SYS_RAWIO"})
CONTROLLER_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob")


class NodeAccess(IntEnum):
    """What a hostPath mount hands the container, from nothing to the node itself."""

    NONE = 0
    TOKENS = 1  # reads credentials that act as the node or as every pod on it
    TAKEOVER = 2  # runs code as root on the node


@dataclass(frozen=True, slots=True)
class SensitivePath:
    gives: str
    writable: NodeAccess
    read_only: NodeAccess


# Node paths that matter, with what a read-write and a read-only mount of them gives. A mount of
# an ancestor gives everything below it, so `/var` and `/run` are judged by what they hold.
# Sources:
#   baseline Pod Security Standard forbids every hostPath:
#     https://kubernetes.io/docs/concepts/security/pod-security-standards/
#   sensitive-path lists: https://github.com/Shopify/kubeaudit/blob/main/docs/auditors/mounts.md,
#     https://www.elastic.co/guide/en/security/current/prebuilt-rule-8-2-1-kubernetes-pod-created-with-a-sensitive-hostpath-volume.html
#   kubelet client key in /var/lib/kubelet/pki (kubeconfig of TLS-bootstrapped nodes, AKS):
#     https://github.com/Azure/aad-pod-identity/pull/1098
#   GCE/GKE kubelet bootstrap key in /etc/srv/kubernetes/pki:
#     https://github.com/kubernetes/kubernetes/issues/52999
#   GKE kubelet configuration in /home/kubernetes: https://github.com/aquasecurity/kube-bench/pull/976
#   writable /var/log: the kubelet follows symlinks planted there when serving logs, reading any
#     node file: https://avd.aquasec.com/misconfig/kubernetes/khv047
#   /var/lib/kubelet/pods holds every pod's volumes, their projected service-account tokens too.
_T, _R, _N = NodeAccess.TAKEOVER, NodeAccess.TOKENS, NodeAccess.NONE
SENSITIVE_HOST_PATHS: dict[str, SensitivePath] = {
    "/": SensitivePath("the node's whole filesystem", _T, _R),
    "/etc": SensitivePath("the node's configuration: users, cron, systemd units", _T, _N),
    "/etc/kubernetes": SensitivePath("the kubelet's kubeconfig and credentials", _T, _R),
    "/etc/kubernetes/manifests": SensitivePath("static pods, which the kubelet runs", _T, _N),
    "/etc/srv/kubernetes": SensitivePath("the kubelet's bootstrap key (GCE, GKE)", _R, _R),
    "/root": SensitivePath("root's home on the node", _T, _N),
    "/home/kubernetes": SensitivePath("the kubelet's binaries and configuration (GKE)", _T, _N),
    "/proc": SensitivePath("every process on the node and the kernel's settings", _T, _N),
    "/sys": SensitivePath("the kernel's and cgroups' settings", _T, _N),
    "/dev": SensitivePath("the node's devices, its disks too", _T, _N),
    "/var/lib/kubelet": SensitivePath("the kubelet's state and credentials", _T, _R),
    "/var/lib/kubelet/pki": SensitivePath("the kubelet's client certificate and key", _R, _R),
    "/var/lib/kubelet/pods": SensitivePath("every pod's volumes and tokens on the node", _R, _R),
    "/var/lib/docker": SensitivePath("every container's filesystem", _T, _N),
    "/var/lib/containerd": SensitivePath("every container's filesystem", _T, _N),
    "/var/log": SensitivePath("the logs the kubelet serves, following symlinks", _R, _N),
}
# Container runtime sockets: whoever connects runs any container, privileged too. Connecting
# needs no write access to the mount, so a read-only mount is as bad
# (https://amf3.github.io/articles/virtualization/docker_socket). Paths: kubeadm's CRI sockets
# (https://github.com/kubernetes/kubernetes/blob/master/cmd/kubeadm/app/constants/constants_unix.go),
# crictl's defaults (https://github.com/kubernetes-sigs/cri-tools/blob/master/docs/crictl.md),
# k3s (https://github.com/k3s-io/k3s/issues/7140). /var/run is a symlink to /run on systemd
# distributions, so each is listed under both.
RUNTIME_SOCKETS = (
    "containerd/containerd.sock",
    "crio/crio.sock",
    "docker.sock",
    "dockershim.sock",
    "cri-dockerd.sock",
    "k3s/containerd/containerd.sock",
)
SENSITIVE_HOST_PATHS |= {
    f"{run}/{socket}": SensitivePath("the container runtime", _T, _T)
    for socket in RUNTIME_SOCKETS
    for run in ("/run", "/var/run")
}


@dataclass(frozen=True, slots=True)
class HostPathMount:
    path: str  # as written in the pod spec
    read_only: bool  # every container that mounts it mounts it readOnly


@dataclass(frozen=True, slots=True)
class HostPathVerdict:
    access: NodeAccess | None  # None: the path is not valid, so what it mounts is unknown
    why: str


def normalised_host_path(path: str) -> str | None:
    """The absolute path a hostPath names (`/var/./lib/../run/` is `/var/run`), None if invalid."""
    if not path.startswith("/"):
        return None
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def _holds(mount: str, path: str) -> bool:
    return mount == path or mount == "/" or path.startswith(mount + "/")


def judge_host_path(mount: HostPathMount) -> HostPathVerdict:
    """What a hostPath gives: the worst of the sensitive paths it is, or is an ancestor of."""
    path = normalised_host_path(mount.path)
    if path is None:
        why = "is empty" if not mount.path else "is not an absolute path"
        return HostPathVerdict(None, f"hostPath {mount.path!r} {why}, so what it mounts is unknown")
    held = {
        sensitive: what.read_only if mount.read_only else what.writable
        for sensitive, what in SENSITIVE_HOST_PATHS.items()
        if _holds(path, sensitive)
    }
    access = max(held.values(), default=NodeAccess.NONE)
    if access is NodeAccess.NONE:
        return HostPathVerdict(access, f"hostPath {mount.path} holds no sensitive node path")
    mode = " read-only" if mount.read_only else ""
    if held.get(path) is access:
        return HostPathVerdict(
            access, f"hostPath {mount.path}{mode} ({SENSITIVE_HOST_PATHS[path].gives})"
        )
    worst = next(p for p in SENSITIVE_HOST_PATHS if held.get(p) is access)  # table order
    gives = SENSITIVE_HOST_PATHS[worst].gives
    return HostPathVerdict(access, f"hostPath {mount.path}{mode} (holds {worst}: {gives})")


@dataclass(frozen=True, slots=True)
class LiteralSecret:
    variable: str  # the env var's name; its value is never kept
    why: str  # which detector matched, never a part of the value


# Value shapes of well-known credentials (facts from the issuers' documentation):
#   AWS access key ids: AKIA long-term, ASIA temporary (STS), 20 characters
#     https://docs.aws.amazon.com/STS/latest/APIReference/API_GetAccessKeyInfo.html
#   PEM private keys, any algorithm: https://www.rfc-editor.org/rfc/rfc7468
#   JWTs: base64url of a JSON header and payload, both `{"...` so `eyJ`: RFC 7519,
#     https://gitlab.com/gitlab-org/gitlab/-/issues/525542
#   GitHub ghp_/gho_/ghu_/ghs_/ghr_ and github_pat_:
#     https://github.blog/changelog/2021-03-31-authentication-token-format-updates-are-generally-available
#   Slack bot and user tokens: https://api.slack.com/docs/token-types; webhooks:
#     https://api.slack.com/messaging/webhooks
#   GitLab personal access tokens glpat-:
#     https://docs.gitlab.com/ee/user/application_security/secret_detection/
#   Stripe live secret and restricted keys: https://docs.stripe.com/keys,
#     https://gitlab.com/gitlab-org/gitlab/-/issues/458019
#   Google API keys, AIza and 35 more: https://learn.microsoft.com/en-us/purview/sit-defn-google-api-key
#   a password in a URL's user info (scheme://user:password@host)
SECRET_VALUE_SHAPES = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("a PEM private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("a JWT", re.compile(r"\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]*")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{22,})")),
    ("a Slack token", re.compile(r"\bxox[bp]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+")),
    ("a GitLab token", re.compile(r"\bglpat-[\w-]{20,}")),
    ("a Stripe live key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[\w-]{35}")),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\$\()[^/\s@]+@")),
)
# A long single token of base64 characters that mixes cases and digits is a random key when its
# Shannon entropy is high: random 32-character base62 strings score 4.2 or more bits a character
# in 99 of 100 draws, while identifiers, hostnames and UUIDs stay under 4.0.
HIGH_ENTROPY_MIN_LENGTH = 32
HIGH_ENTROPY_MIN_BITS = 4.2
BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]+")
# Names whose last word says the value is a credential. `KEY` counts only after a word that makes
# it a credential (API_KEY, not CACHE_KEY or KEYCLOAK_URL); a name ending in another word
# (`_PATH`, `_FILE`, `_DIR`, `_URL`, `_TTL`, `_ENABLED`) holds something about the secret.
SECRET_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "PWD", "PASS", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "TOKENS"}
    | {"CREDENTIAL", "CREDENTIALS", "CREDS", "AUTH", "APIKEY", "ACCESSKEY", "PRIVATEKEY"}
)
SECRET_WORD_SUFFIXES = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY")  # PGPASSWORD
CREDENTIAL_KEY_QUALIFIERS = frozenset(
    {"API", "ACCESS", "PRIVATE", "SECRET", "SIGNING", "ENCRYPTION", "MASTER", "CLIENT", "AUTH"}
    | {"HMAC", "SSH", "SHARED", "STORAGE", "ACCOUNT", "SERVICE", "LICENSE", "SESSION"}
)
# Values that are not literal secrets even under a secret's name: references the kubelet or the
# app expands ($(VAR), ${VAR}), switches, and file paths (GOOGLE_APPLICATION_CREDENTIALS).
NOT_A_SECRET_VALUE = re.compile(
    r"\$\(\w+\)|\$\{\w+\}|true|false|yes|no|on|off|enabled|disabled|/[^\s:]*", re.IGNORECASE
)


REDACTED_ENV_VALUE = "<redacted by mutguard: {verdict}>"
NOT_A_CREDENTIAL = "not a credential"
_REDACTED_ENV_VALUE = re.compile(r"<redacted by mutguard: (?P<verdict>[^<>]+)>")
# Every verdict literal_secret gives, and the one it gives when it finds nothing.
_VERDICTS = frozenset(
    {f"value shaped like {what}" for what, _ in SECRET_VALUE_SHAPES}
    | {"random-looking value", "a credential by its name", NOT_A_CREDENTIAL}
)


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # apiKey is API_KEY
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if w]


def is_secret_name(name: str) -> bool:
    words = _name_words(name)
    if not words:
        return False
    last = words[-1]
    if last in SECRET_WORDS or last.endswith(SECRET_WORD_SUFFIXES):
        return True
    return last == "KEY" and len(words) > 1 and words[-2] in CREDENTIAL_KEY_QUALIFIERS


def shannon_entropy(text: str) -> float:
    """Bits a character, from the characters' frequencies in the text."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_random(value: str) -> bool:
    return (
        len(value) >= HIGH_ENTROPY_MIN_LENGTH
        and BASE64_TOKEN.fullmatch(value) is not None
        and re.search(r"[a-z]", value) is not None
        and re.search(r"[A-Z]", value) is not None
        and re.search(r"[0-9]", value) is not None
        and shannon_entropy(value) >= HIGH_ENTROPY_MIN_BITS
    )


def literal_secret(name: str, value: str) -> LiteralSecret | None:
    """Why an env var's literal value is a credential, if it is: by its shape, then its name."""
    if not value or NOT_A_SECRET_VALUE.fullmatch(value.strip()):
        return None
    for what, shape in SECRET_VALUE_SHAPES:
        if shape.search(value):
            return LiteralSecret(name, f"value shaped like {what}")
    if _looks_random(value):
        return LiteralSecret(name, "random-looking value")
    if is_secret_name(name):
        return LiteralSecret(name, "a credential by its name")
    return None


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    privileged: bool
    allow_privilege_escalation: bool | None
    runs_as_root: bool
    added_capabilities: frozenset[str]
    secret_env: tuple[LiteralSecret, ...]  # env vars with a literal credential, never its value


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
    host_paths: tuple[HostPathMount, ...]
    containers: tuple[Container, ...]
    nodes: tuple[str, ...]  # where its pods run; empty when none is scheduled

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    # A workload's graph nodes are named in many edges: interned, each name is one string.
    @property
    def node(self) -> str:
        """Its attack-graph node."""
        return sys.intern(f"workload:{self.namespace}/{self.name}")

    @property
    def service_account_node(self) -> str:
        return sys.intern(f"sa:{self.namespace}/{self.service_account}")

    def host_path_verdicts(self) -> list[HostPathVerdict]:
        return [judge_host_path(mount) for mount in self.host_paths]

    def token_reads(self) -> list[str]:
        """Why code in this workload reads its node's credentials, short of owning the node."""
        return [v.why for v in self.host_path_verdicts() if v.access is NodeAccess.TOKENS]

    def unjudged_host_paths(self) -> list[str]:
        return [v.why for v in self.host_path_verdicts() if v.access is None]

    def escapes(self) -> list[str]:
        """Why code in this workload is root on its node, if it is."""
        reasons = [f"privileged container {c.name}" for c in self.containers if c.privileged]
        reasons += [v.why for v in self.host_path_verdicts() if v.access is NodeAccess.TAKEOVER]
        for container in self.containers:
            caps = sorted(container.added_capabilities & ESCAPE_CAPABILITIES)
            if self.host_pid and "SYS_PTRACE" in container.added_capabilities:
                caps.append("SYS_PTRACE with hostPID")
            if caps:
                reasons.append(f"container {container.name} adds {', '.join(caps)}")
        return reasons


@dataclass(frozen=True, slots=True)
class Workloads:
    """The workloads of one cluster. An object with a field of the wrong JSON type is skipped
    alone, its reason (naming the object and the field) in `unread`: what it runs is then not
    known, so the workload checks that found nothing cannot pass."""

    items: tuple[Workload, ...]
    service_accounts: frozenset[tuple[str, str]]  # (namespace, name) of every known account
    unread: tuple[str, ...] = ()

    @classmethod
    def from_kubectl(cls, document: Any) -> Workloads:
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise InputError("workloads.json: expected a kubectl List with an 'items' array")
        objects: list[dict] = []
        unread: list[str] = []
        for index, item in enumerate(document["items"]):
            try:
                _check_object(item, index)
            except InputError as exc:
                unread.append(str(exc))
            else:
                objects.append(item)
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
        return cls(workloads, frozenset(accounts), tuple(unread))


# The JSON type of every field this module reads, as far as it reads them: a type, an object's
# fields as a dict, a list's items as a one-item list. Empty values read as absent, so they pass.
_CONTAINER_SHAPE = {
    "securityContext": {"capabilities": {"add": list}},
    "env": [dict],
    "volumeMounts": [dict],
}
_POD_SPEC_SHAPE = {
    "serviceAccountName": str,
    "serviceAccount": str,
    "nodeName": str,
    "securityContext": dict,
    "volumes": [dict],
    "initContainers": [_CONTAINER_SHAPE],
    "containers": [_CONTAINER_SHAPE],
    "ephemeralContainers": [_CONTAINER_SHAPE],
}
_METADATA_SHAPE = {
    "metadata": {
        "namespace": str,
        "labels": {"pod-template-hash": str},
        "ownerReferences": [{"kind": str, "name": str}],
    }
}
_TEMPLATE_SHAPE = {"template": {"spec": _POD_SPEC_SHAPE}}
_OBJECT_SHAPES: dict[Any, dict] = {
    "Pod": {**_METADATA_SHAPE, "spec": _POD_SPEC_SHAPE},
    **{kind: {**_METADATA_SHAPE, "spec": _TEMPLATE_SHAPE} for kind in CONTROLLER_KINDS},
    "CronJob": {**_METADATA_SHAPE, "spec": {"jobTemplate": {"spec": _TEMPLATE_SHAPE}}},
}
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string"}


def _check_object(item: Any, index: int) -> None:
    """InputError naming the object and the first field whose JSON type is wrong, so a
    malformed object is reported instead of failing deep inside the analysis."""
    if not isinstance(item, dict) or not isinstance(item.get("metadata"), dict):
        raise InputError(f"items[{index}] has no metadata")
    shape = _OBJECT_SHAPES.get(item.get("kind"), _METADATA_SHAPE)
    wrong = _wrong_field(item, shape)
    if wrong is None:
        return
    steps, expected, found = wrong
    field = "".join(reversed(steps)).removeprefix(".")
    metadata = item["metadata"]
    name, namespace = metadata.get("name"), metadata.get("namespace")
    label = f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
    what = f"{item.get('kind')} {label}" if isinstance(label, str) and label else f"items[{index}]"
    raise InputError(f"{what}: {field} must be {_JSON_TYPES[expected]}, not {_json_type(found)}")


def _wrong_field(value: Any, shape: Any) -> tuple[list[str], type, Any] | None:
    """The first value not of its shape's type: (the path to it, innermost step first, the
    type expected, the value), or None. The path is built only for a wrong field: it is cheap
    this way on clusters of many thousand pods."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [], dict, value
        for key, inner in shape.items():
            field = value.get(key)
            if field and (wrong := _wrong_field(field, inner)):
                wrong[0].append(f".{key}")
                return wrong
    elif isinstance(shape, list):
        if not isinstance(value, list):
            return [], list, value
        for i, element in enumerate(value):
            if wrong := _wrong_field(element, shape[0]):
                wrong[0].append(f"[{i}]")
                return wrong
    elif not isinstance(value, shape):
        return [], shape, value
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


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
        host_paths=tuple(_host_path_mounts(spec.get("volumes") or [], containers)),
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


def _host_path_mounts(volumes: list[dict], containers: list[dict]) -> Iterable[HostPathMount]:
    """hostPath volumes; one is read-only when every container mounting it says so. A volume no
    container mounts yet counts as writable: an ephemeral container can mount it later."""
    for volume in volumes:
        if not isinstance(volume.get("hostPath"), dict):
            continue
        mounts = [
            m
            for c in containers
            for m in c.get("volumeMounts") or []
            if m.get("name") == volume.get("name")
        ]
        read_only = bool(mounts) and all(m.get("readOnly") is True for m in mounts)
        yield HostPathMount(str(volume["hostPath"].get("path", "")), read_only)


def _secret_env(env: Iterable[dict]) -> Iterable[LiteralSecret]:
    """Literal values only: `valueFrom` and `envFrom` reference a Secret, which is the fix."""
    for variable in env:
        value = variable.get("value")
        if isinstance(value, str) and (found := _judged(str(variable.get("name", "")), value)):
            yield found


def redacted_env_value(name: str, value: str) -> str:
    """What `mutguard snapshot` writes in place of a literal env value: the verdict on it, so
    that a scan of the snapshot judges the variable as the live scan did, without the value."""
    found = literal_secret(name, value)
    return REDACTED_ENV_VALUE.format(verdict=found.why if found else NOT_A_CREDENTIAL)


def _judged(name: str, value: str) -> LiteralSecret | None:
    marker = _REDACTED_ENV_VALUE.fullmatch(value)
    if marker is None or marker["verdict"] not in _VERDICTS:  # a value, or a marker made by hand
        return literal_secret(name, value)
    verdict = marker["verdict"]
    return None if verdict == NOT_A_CREDENTIAL else LiteralSecret(name, verdict)


def attack_edges(workloads: Workloads, owned_by_findings: frozenset[str]) -> list[Edge]:
    """What holds in the graph once workloads are known, before any mistake.

    A workload reaches the API and, with its token mounted, its service account; escaping to
    its node takes one mistake; root on a node reads the tokens of the pods it runs, and can
    place a pod on any node; whoever runs pods in a namespace can run them as any of its
    service accounts. Token edges of accounts in `owned_by_findings` are left to the finding
    that reports them, so that fixing it shows its gain.
    """
    edges = _service_account_edges(workloads)
    nodes = {NODE_ANY}
    for workload in workloads.items:
        edges.append(Edge(workload.node, API, 0, "network", f"{workload} is inside the cluster"))
        if workload.automount_token and workload.service_account_node not in owned_by_findings:
            edges.append(token_edge(workload))
        for node in node_names(workload):
            nodes.add(node)
            edges += _node_edges(workload, node)
    for node in sorted(nodes - {NODE_ANY}):
        edges.append(Edge(NODE_ANY, node, 0, "scheduling", f"a pod can be placed on {node}"))
    for node in sorted(nodes):
        edges += _node_not_yet_admin(node)
    return list(dict.fromkeys(edges))


def _service_account_edges(workloads: Workloads) -> list[Edge]:
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
    return edges


def _node_edges(workload: Workload, node: str) -> list[Edge]:
    """Escaping the workload to its node, and what root there reads of it."""
    escape = f"escaping {workload} to {node} needs one mistake"
    edges = [Edge(workload.node, node, 1, "escape", escape)]
    if workload.automount_token and node != NODE_ANY:
        reads = f"root on {node} reads the token of {workload}"
        edges.append(Edge(node, workload.service_account_node, 0, "credential", reads))
        held = f"the tokens on {node} include that of {workload}"
        edges.append(Edge(node_tokens(node), workload.service_account_node, 0, "credential", held))
    return edges


def _node_not_yet_admin(node: str) -> list[Edge]:
    return [
        Edge(
            node,
            ADMIN,
            1,
            "authorization",
            f"root on {node} is not yet admin: one more mistake (an admin token on it)",
        ),
        Edge(
            node_tokens(node),
            ADMIN,
            1,
            "authorization",
            f"the tokens on {node} are not yet admin: one more mistake (an admin token on it)",
        ),
    ]


def node_names(workload: Workload) -> list[str]:
    return [f"node:{n}" for n in workload.nodes] or [NODE_ANY]


def node_tokens(node: str) -> str:
    """The graph node of whoever holds the tokens of every pod on `node`."""
    return f"tokens:{node}"


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
