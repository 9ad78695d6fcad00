"""The terminal report (fleet worst first, a legend, paths in words, the next step), NO_COLOR on
a real terminal, and the bundled demo clusters it is first seen with."""

import errno
import json
import os
import pty
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from mutguard.cli import build_parser, main
from mutguard.models import ClusterReport, Report, Status
from mutguard.providers import snapshot
from mutguard.render import render
from mutguard.scan import build_report, evaluate
from mutguard.sources import ClusterSource, Provider

from builders import (
    OBSERVED_AT,
    access_entry,
    assess,
    cluster_role_binding,
    describe_cluster,
    kube_list,
    namespace,
    pod,
    rbac_list,
)

DEMO = Path(str(resources.files("mutguard") / "demo"))
DEMO_DATE = datetime(2026, 6, 1, tzinfo=UTC)
NAMESPACES = kube_list(namespace("default", "baseline"), namespace("shop", "restricted"))
NO_ANONYMOUS = {"anonymous_version": False, "anonymous_api": False}
ANONYMOUS_ADMIN = cluster_role_binding(
    "debug-anonymous-admin", "cluster-admin", ("Group", "system:unauthenticated")
)
ADMIN_ROLE = "arn:aws:iam::123456789012:role/admins"
MUT_FIELDS = ("mut", "mut_workload", "mut_credential")
RAW_START_LABEL = re.compile(r"\b(?:credential|workload):\S|from internet\b")


def fully_read(name: str, **cluster) -> ClusterReport:
    """An EKS cluster with every in-cluster document read: its MUT values are facts."""
    documents = {
        "rbac": rbac_list(),
        "access_entries": [],
        "workloads": kube_list(pod("web-1")),
        "namespaces": NAMESPACES,
        "probe": NO_ANONYMOUS,
    }
    report = assess(describe_cluster(name, **cluster), **documents)
    assert not report.mut_upper_bound
    return report


def fleet() -> list[ClusterReport]:
    """Clusters whose names and input order are not their order by MUT."""
    return [
        fully_read("alpha-hardened", public=False, private=True),
        evaluate(ClusterSource(Provider.EKS, "aardvark-unread", "eu-west-1", "1"), OBSERVED_AT),
        fully_read("bravo-public"),
        assess(
            describe_cluster("charlie-admin-key"),
            rbac=rbac_list(),
            access_entries=[access_entry(ADMIN_ROLE, ("AmazonEKSClusterAdminPolicy", "cluster"))],
            workloads=kube_list(pod("web-1")),
            namespaces=NAMESPACES,
            probe=NO_ANONYMOUS,
        ),
        assess(  # workloads not read: its MUT from a pod is an upper bound
            describe_cluster("delta-open"),
            rbac=rbac_list(ANONYMOUS_ADMIN),
            access_entries=[],
            probe={"anonymous_version": True, "anonymous_api": True},
        ),
        fully_read("echo-anonymous-on", version="1.31"),  # EKS 1.31 still takes anonymous calls
    ]


def report_of(clusters: list[ClusterReport]) -> Report:
    return Report(generated_at=OBSERVED_AT, clusters=clusters)


def mut_values(cluster: ClusterReport) -> tuple[int, int, int]:
    return cluster.mut, cluster.mut_workload, cluster.mut_credential


def shown(cluster: ClusterReport, field: str) -> str:
    """A MUT as the summary should show it: `≤` on an upper bound, `?` when nothing was read."""
    value = getattr(cluster, field)
    if value is None:
        return "?"
    return f"≤{value}" if field in cluster.mut_upper_bound else str(value)


def expected_order(clusters: list[ClusterReport]) -> list[str]:
    """Worst first: the lowest of the three MUT values, then internet, pod, credential; clusters
    that could not be read have no MUT and come last."""
    readable = [c for c in clusters if c.mut is not None]
    readable.sort(key=lambda c: (min(mut_values(c)), *mut_values(c)))
    return [c.name for c in readable] + [c.name for c in clusters if c.mut is None]


def summary_of(text: str) -> str:
    """The fleet summary and its legend: everything before the first cluster's panel."""
    return text[: text.index("╭")]


def test_the_fleet_summary_and_the_panels_are_worst_first():
    clusters = fleet()
    order = expected_order(clusters)
    assert order[0] == "delta-open" and order[-1] == "aardvark-unread"  # the fleet is varied
    text = render(report_of(clusters), "table")
    summary = summary_of(text)
    assert summary.startswith("fleet summary, worst first")
    rows = [line for line in summary.splitlines() if " · " in line and "eu-west-1" in line]
    assert [row.split(" · ")[1] for row in rows] == order
    for row, name in zip(rows, order, strict=True):
        cluster = next(c for c in clusters if c.name == name)
        assert row.split()[-3:] == [shown(cluster, field) for field in MUT_FIELDS]
    panels = re.findall(r"╭─ eks · ([\w-]+) · ", text)
    assert panels == order


def test_the_legend_explains_the_columns_and_a_bound_only_when_one_is_shown():
    bounded = next(c for c in fleet() if c.name == "delta-open")
    assert bounded.mut_upper_bound == ["mut_workload"]
    with_bound = summary_of(render(report_of([bounded, fully_read("bravo-public")]), "table"))
    assert "≤1" in with_bound
    assert "≤N: an upper bound" in with_bound and "basis" in with_bound
    exact = summary_of(render(report_of([fully_read("bravo-public")]), "table"))
    assert "≤" not in exact and "upper bound" not in exact
    for text in (with_bound, exact):  # what the three columns count from, bound or not
        assert "internet: anyone on the internet" in text
        assert "pod: the exploited app of one pod" in text
        assert "credential: one leaked credential" in text


def test_a_bounded_cluster_shows_the_basis_its_bound_rests_on():
    bounded = next(c for c in fleet() if c.name == "delta-open")
    text = render(report_of([bounded]), "table")
    assert "workloads: not read" in text  # the assumption behind its ≤1 from a pod


def test_a_cluster_says_how_many_grants_are_the_platforms_and_where_to_see_them():
    cluster = fully_read("bravo-public")
    assert cluster.platform_grants  # the bootstrap policy's controllers hold dangerous powers
    text = re.sub(r"[│\s]+", " ", render(report_of([cluster]), "table"))  # panel lines joined
    assert f"not findings: {len(cluster.platform_grants)} dangerous power(s)" in text
    assert "`mutguard explain` lists them with why" in text
    bare = cluster.model_copy(update={"platform_grants": []})
    assert "not findings" not in render(report_of([bare]), "table")


def test_paths_are_named_in_words_not_by_their_start_labels():
    clusters = fleet()
    labels = {p.from_ for c in clusters for p in c.paths}
    assert {"internet", "workload:any", f"credential:{ADMIN_ROLE}"} <= {
        label.split(" (")[0] for label in labels
    }
    hardened = next(c for c in clusters if c.name == "alpha-hardened")
    assert min(hardened.paths, key=lambda p: p.mut).from_ == "workload:shop/web-1"
    text = render(report_of(clusters), "table")
    assert RAW_START_LABEL.search(text) is None
    assert "cheapest path (MUT 0) from the internet:" in text
    assert "cheapest path (MUT 1) from a leaked credential:" in text
    assert f"→ start (1): {ADMIN_ROLE} (AmazonEKSClusterAdminPolicy" in text  # which one leaks
    assert "cheapest path (MUT 2) from a compromised pod of shop/web-1:" in text


def test_the_report_ends_with_the_command_that_explains_the_worst_cluster():
    clusters = fleet()
    worst = expected_order(clusters)[0]
    text = render(report_of(clusters), "table")
    last = text.rstrip().splitlines()[-1]
    assert last.startswith(f"next: mutguard explain {worst} ")
    command = last.removeprefix("next: ").split(" (")[0].split()
    assert command[:3] == ["mutguard", "explain", worst]
    sources = [alternative.split() for alternative in " ".join(command[3:]).split("|")]
    assert [s[0] for s in sources] == ["--demo", "--snapshot", "--provider"]
    for source in sources:  # each alternative is a command the CLI accepts
        args = build_parser().parse_args(["explain", worst, *source])
        assert args.cluster == worst
    assert build_parser().parse_args(["explain", worst, *sources[2]]).provider == "aws"


@pytest.mark.parametrize("source", ["demo", "snapshot"])
def test_the_cli_names_its_own_source_in_the_next_step(capsys, source):
    demo = Path(str(resources.files("mutguard") / "demo"))
    argv = ["demo"] if source == "demo" else ["scan", "--snapshot", str(demo)]
    assert main([*argv, "--as-of", "2026-03-01"]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    command = shlex.split(last.removeprefix("next: "))
    assert command[:2] == ["mutguard", "explain"]
    # The command runs as printed and explains the cluster it names.
    assert main(command[1:]) == 0
    assert capsys.readouterr().out.startswith(f"{command[2]} (")


def test_without_a_readable_cluster_there_is_no_next_step():
    unread = next(c for c in fleet() if c.mut is None)
    text = render(report_of([unread]), "table")
    assert "?: the cluster could not be read" in text
    assert "next:" not in text


def test_without_colour_nothing_turns_it_on(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" not in render(report_of(fleet()), "table", color=False)


# --- NO_COLOR on a real terminal ---------------------------------------------------------------


def run_in_terminal(env: dict[str, str]) -> tuple[int, str]:
    """`mutguard demo` with stdout and stderr on a pseudo-terminal, as a user's shell runs it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mutguard.cli", "demo"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError as exc:  # Linux reports the closed terminal as EIO
            if exc.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("no_color", "coloured"),
    [(None, True), ("1", False), ("", True)],  # set and non-empty disables colour
)
def test_no_color_is_honoured_on_a_terminal(no_color, coloured):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    if no_color is not None:
        env["NO_COLOR"] = no_color
    code, out = run_in_terminal(env)
    assert code == 0, out
    assert "fleet summary, worst first" in out
    assert ("\x1b[" in out) is coloured


# --- the bundled demo --------------------------------------------------------------------------

MISSING_IN_CLUSTER_DOCUMENTS = (
    "workloads.json",
    "namespaces.json",
    "workloads not read",
    "namespaces not read",
    "workloads and RBAC are both needed",
)


@pytest.fixture(scope="module")
def demo() -> dict[str, ClusterReport]:
    report = build_report(snapshot.read(DEMO), DEMO_DATE)
    return {c.name: c for c in report.clusters}


def demo_documents(name: str) -> tuple[list[dict], list[dict]]:
    def items(document: str) -> list[dict]:
        return json.loads((DEMO / name / document).read_text())["items"]

    return items("rbac.json"), items("workloads.json")


def test_every_demo_cluster_has_workloads_and_namespaces(demo):
    assert len(demo) == 6
    for name in demo:
        for document in ("workloads.json", "namespaces.json"):
            items = json.loads((DEMO / name / document).read_text())["items"]
            assert items, f"{name}/{document}"


def test_no_demo_finding_is_unknown_for_want_of_workloads_or_namespaces(demo):
    for cluster in demo.values():
        for f in cluster.findings:
            if f.status is Status.UNKNOWN:
                assert not any(why in f.detail for why in MISSING_IN_CLUSTER_DOCUMENTS), f
        assert "mut_workload" not in cluster.mut_upper_bound
        assert cluster.blast_radius


def test_the_demo_service_accounts_exist(demo):
    """Service accounts named in the RBAC bindings and run by pods are listed."""
    for name in demo:
        rbac, workloads = demo_documents(name)
        listed = {
            (i["metadata"]["namespace"], i["metadata"]["name"])
            for i in workloads
            if i["kind"] == "ServiceAccount"
        }
        bound = {
            (s["namespace"], s["name"])
            for b in rbac
            if b["kind"].endswith("Binding")
            for s in b.get("subjects") or []
            if s["kind"] == "ServiceAccount"
        }
        run = {
            (i["metadata"]["namespace"], i["spec"]["serviceAccountName"])
            for i in workloads
            if i["kind"] == "Pod"
        }
        assert bound | run <= listed, name


NODE_TAKING_CHECKS = ("workloads.node_escape", "workloads.host_namespaces")


def test_demo_pods_that_take_their_node_run_where_pod_security_allows_them(demo):
    """A privileged pod or a host mount is admitted only where no Pod Security level refuses it."""
    refusing = {"baseline", "restricted"}
    escapes = 0
    for name, cluster in demo.items():
        levels = {
            item["metadata"]["name"]: item["metadata"]["labels"].get(
                "pod-security.kubernetes.io/enforce"
            )
            for item in json.loads((DEMO / name / "namespaces.json").read_text())["items"]
        }
        for f in cluster.findings:
            if f.status is Status.FAIL and f.check_id in NODE_TAKING_CHECKS:
                escapes += 1
                workload_namespace = f.resource.split()[1].split("/")[0]  # "Kind ns/name"
                assert levels[workload_namespace] not in refusing, f
    assert escapes  # the demo does show pods that take their node


def test_a_hardened_workload_is_further_from_admin_than_one_that_mounts_its_token(demo):
    """platform-core: ledger/ledger-api sets automountServiceAccountToken: false (pod and service
    account), runs restricted (non-root, no privilege escalation, all capabilities dropped), with
    no host namespace or hostPath. From its compromise:

    1. its app is exploited: 1;
    2. it holds no token, so the API needs a credential (+1) and then a bad RBAC binding (+1): 3;
       or it escapes to its node (+1, nothing privileged lets it) where root is not yet admin
       (+1): the only token there is coredns', whose account the RBAC grants nothing: 3.

    kube-system/coredns mounts its token: exploited (1), the token authenticates (0), one bad
    binding (+1): 2, which is the cluster's MUT from a pod. The same holds for every workload
    written with its token unmounted (service-catalog, the ledger-reconcile CronJob).
    """
    cluster = demo["platform-core"]
    radius = {b.workload: b.mut for b in cluster.blast_radius}
    assert radius == {
        "kube-system/coredns": 2,
        "ledger/ledger-api": 3,
        "ledger/ledger-reconcile": 3,
        "platform/service-catalog": 3,
    }
    assert cluster.mut_workload == 2


def test_any_demo_gke_pod_mints_the_nodes_editor_token_even_without_its_own(demo):
    """data-platform: its one node pool runs the GCE metadata server (GCE_METADATA) as the Compute
    Engine default service account with the cloud-platform scope. analytics/dbt-nightly is a
    CronJob with no pod running and its token unmounted; once its app is exploited (1), it asks
    the metadata server for the pool's token (0: nothing stops that) and that account is project
    Editor, whose container.* permissions count in the cluster (0): MUT 1.
    """
    cluster = demo["data-platform"]
    radius = {b.workload: b for b in cluster.blast_radius}
    assert radius["analytics/dbt-nightly"].mut == 1
    assert any("metadata server" in step for step in radius["analytics/dbt-nightly"].steps)
    assert cluster.mut_workload == 1
