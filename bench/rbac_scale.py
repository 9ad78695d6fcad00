"""RBAC and MUT analysis at scale: synthetic clusters of 5k, 20k and 50k bindings.

Each size runs in a fresh interpreter, so its peak RSS is its own. A cluster has roles, bindings
and pods in proportion (one namespace per 50 bindings, one pod per 5 bindings), with a few
dangerous grants sprinkled in, and is analysed exactly as a scan does: parse, every check, MUT
with its gains, blast radius. Prints the analysis time, peak RSS and the 50k/20k time ratio.

Targets on a 2-core machine: 50k bindings in under 10 s, peak RSS under 1 GiB, and scaling no
worse than linear-times-log (50k/20k at most 2.5 x log(50k)/log(20k) ~ 2.73).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

SIZES = (5_000, 20_000, 50_000)
REPEAT = 3
TARGET_SECONDS = 10.0
TARGET_RSS_MIB = 1024
BINDINGS_PER_NAMESPACE = 50
BINDINGS_PER_POD = 5

RBAC_API = "rbac.authorization.k8s.io"
SAFE_RULES = [
    {"apiGroups": [""], "resources": ["pods", "services", "configmaps"], "verbs": ["get", "list"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
]
RISKY_RULES = [
    [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
    [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
    [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}],
]


def synthetic_cluster(bindings: int) -> dict[str, Any]:
    """The documents of one cluster, as a snapshot holds them."""
    namespaces = max(1, bindings // BINDINGS_PER_NAMESPACE)
    items: list[dict] = []
    cluster_roles = max(10, bindings // 100)
    for index in range(cluster_roles):
        rules = RISKY_RULES[index % len(RISKY_RULES)] if index % 25 == 0 else SAFE_RULES
        items.append(_role("ClusterRole", f"app-role-{index}", "", rules))
    pods = []
    for n in range(namespaces):
        namespace = f"team-{n}"
        items.append(_role("Role", "local-reader", namespace, SAFE_RULES))
        for b in range(BINDINGS_PER_NAMESPACE):
            subject = _subject(n, b)
            if b % 5 == 0:
                items.append(
                    _binding("RoleBinding", f"rb-{b}", namespace, "Role", "local-reader", subject)
                )
            else:
                role = f"app-role-{(n * BINDINGS_PER_NAMESPACE + b) % cluster_roles}"
                items.append(
                    _binding("RoleBinding", f"rb-{b}", namespace, "ClusterRole", role, subject)
                )
        for p in range(BINDINGS_PER_NAMESPACE // BINDINGS_PER_POD):
            pods.append(_pod(namespace, p, n))
    for c in range(bindings - namespaces * BINDINGS_PER_NAMESPACE):
        items.append(
            _binding(
                "ClusterRoleBinding",
                f"crb-{c}",
                "",
                "ClusterRole",
                f"app-role-{c % cluster_roles}",
                {"kind": "User", "name": f"user-{c}@example.com"},
            )
        )
    cluster = {
        "cluster": {
            "name": f"scale-{bindings}",
            "arn": f"arn:aws:eks:eu-west-1:123456789012:cluster/scale-{bindings}",
            "version": "1.34",
            "resourcesVpcConfig": {"endpointPublicAccess": False, "endpointPrivateAccess": True},
            "accessConfig": {
                "authenticationMode": "API",
                "bootstrapClusterCreatorAdminPermissions": False,
            },
        }
    }
    return {
        "cluster.json": cluster,
        "rbac.json": {"apiVersion": "v1", "kind": "List", "items": items},
        "workloads.json": {"apiVersion": "v1", "kind": "List", "items": pods},
    }


def _role(kind: str, name: str, namespace: str, rules: list[dict]) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC_API}/v1", "kind": kind, "metadata": metadata, "rules": rules}


def _binding(
    kind: str, name: str, namespace: str, role_kind: str, role: str, subject: dict
) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": f"{RBAC_API}/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC_API, "kind": role_kind, "name": role},
        "subjects": [subject],
    }


def _subject(namespace: int, index: int) -> dict:
    if index % 3 == 0:
        return {"kind": "Group", "name": f"team-{namespace}-devs"}
    return {"kind": "ServiceAccount", "name": f"app-{index % 10}", "namespace": f"team-{namespace}"}


def _pod(namespace: str, index: int, node: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"app-{index}", "namespace": namespace},
        "spec": {
            "serviceAccountName": f"app-{index}",
            "nodeName": f"node-{node % 200}",
            "containers": [{"name": "app", "image": "registry.example.com/app:1"}],
        },
    }


_MEASURE = """
import json, resource, sys, time
from datetime import UTC, datetime
sys.path.insert(0, {bench!r})
from rbac_scale import synthetic_cluster
from mutguard.scan import evaluate
from mutguard.sources import ClusterSource, Provider

documents = synthetic_cluster({bindings})
source = ClusterSource(Provider.EKS, "scale", documents=documents)
started = time.perf_counter()
report = evaluate(source, datetime.now(UTC))
elapsed = time.perf_counter() - started
assert report.mut is not None, report.errors
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "rss_mib": rss_mib,
                  "findings": len(report.findings), "workloads": len(report.blast_radius),
                  "mut": [report.mut, report.mut_workload, report.mut_credential]}}))
"""


def measure(bindings: int, repeat: int = REPEAT) -> dict[str, Any]:
    """The median of `repeat` fresh interpreters: one run's timing is too noisy for a ratio."""
    code = _MEASURE.format(bench=str(Path(__file__).parent), bindings=bindings)
    runs = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"analysis of {bindings} bindings failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = runs[0] | {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
    }
    return result


def main() -> int:
    print(
        "mutguard RBAC scale benchmark (analysis only: parse, checks, MUT, blast radius; "
        f"median of {REPEAT} runs per size)"
    )
    results = {}
    for bindings in SIZES:
        result = measure(bindings)
        results[bindings] = result
        print(
            f"  {bindings:>6} bindings: {result['seconds']:6.2f} s, "
            f"peak RSS {result['rss_mib']:6.0f} MiB, {result['findings']} findings, "
            f"{result['workloads']} workloads, MUT {result['mut']}"
        )
    largest, middle = results[SIZES[-1]], results[SIZES[-2]]
    ratio = largest["seconds"] / middle["seconds"]
    n_log_n = (SIZES[-1] * math.log(SIZES[-1])) / (SIZES[-2] * math.log(SIZES[-2]))
    checks = [
        (
            f"50k bindings analysed in {largest['seconds']:.2f} s (target < {TARGET_SECONDS:g} s)",
            largest["seconds"] < TARGET_SECONDS,
        ),
        (
            f"peak RSS {largest['rss_mib']:.0f} MiB (target < {TARGET_RSS_MIB} MiB)",
            largest["rss_mib"] < TARGET_RSS_MIB,
        ),
        (f"time ratio 50k/20k: {ratio:.2f}x (n log n would be {n_log_n:.2f}x)", ratio <= n_log_n),
    ]
    print("results:")
    for text, ok in checks:
        print(f"  {text}  {'PASS' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
