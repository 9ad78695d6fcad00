"""Platform objects are recognised by their whole content, never by name or label.

What the expectations follow:
- An API server creates the bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy)
  and reconciles it at start-up; its objects carry the label kubernetes.io/bootstrapping and the
  `system:` prefix, but so can any object whoever may create bindings writes: the authorizer
  (plugin/pkg/auth/authorizer/rbac/rbac.go) grants through a binding whatever its name, so a
  name or label proves nothing.
- The catalogue mutguard ships is derived from that policy as the Kubernetes repository keeps it
  (testdata/*.yaml, copied into tests/fixtures/kubernetes-bootstrap-rbac); the first test checks
  the shipped file is exactly that.
"""

import copy
import json
from importlib import resources

import pytest
import yaml

from mutguard.models import Status
from mutguard.render.explain import explain
from mutguard.scan import evaluate
from mutguard.sources import ClusterSource, Provider

from builders import (
    BOOTSTRAP_RBAC,
    OBSERVED_AT,
    assess,
    assess_gke,
    bootstrap_items,
    cluster_role,
    cluster_role_binding,
    describe_cluster,
    finding,
    gke_cluster,
    rbac_list,
)

PRIVATE = {"public": False, "private": True}
NO_ANONYMOUS = {"anonymous_version": False, "anonymous_api": False}
WILDCARD = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
PLATFORM_RBAC = resources.files("mutguard").joinpath("data", "platform_rbac")


def scan(document: dict):
    return assess(describe_cluster(**PRIVATE), rbac=document, probe=NO_ANONYMOUS)


def fails(report) -> list:
    return [f for f in report.findings if f.status is Status.FAIL]


def test_the_shipped_catalogue_is_the_bootstrap_policy():
    shipped = json.loads(
        resources.files("mutguard").joinpath("data", "platform_rbac", "kubernetes.json").read_text()
    )
    bindings = []
    for path in sorted(BOOTSTRAP_RBAC.glob("*-bindings.yaml")):
        for item in yaml.safe_load(path.read_text())["items"]:
            subjects = [
                {k: s[k] for k in ("kind", "name", "namespace") if s.get(k)}
                for s in item.get("subjects") or []
            ]
            bindings.append(
                (
                    item["kind"],
                    item["metadata"].get("namespace", ""),
                    item["metadata"]["name"],
                    (item["roleRef"]["kind"], item["roleRef"]["name"]),
                    json.dumps(subjects, sort_keys=True),
                )
            )
    catalogued = [
        (
            b["kind"],
            b["namespace"],
            b["name"],
            (b["roleRef"]["kind"], b["roleRef"]["name"]),
            json.dumps(b["subjects"], sort_keys=True),
        )
        for b in shipped["bindings"]
    ]
    assert sorted(catalogued) == sorted(bindings)
    # Roles: the bootstrap's, each with its rules, as far as a catalogued binding names them.
    folder = resources.files("mutguard").joinpath("data", "platform_rbac")
    named = {
        (ref["kind"], b.get("namespace", "") if ref["kind"] == "Role" else "", ref["name"])
        for catalogue in ("kubernetes", "eks", "gke", "aks")
        for b in json.loads(folder.joinpath(f"{catalogue}.json").read_text())["bindings"]
        for ref in [b["roleRef"]]
    }
    bootstrap_roles = [
        (i["kind"], i["metadata"].get("namespace", ""), i["metadata"]["name"], i.get("rules") or [])
        for i in (*bootstrap_items(), *bootstrap_items(featuregates=True))
        if i["kind"] in ("ClusterRole", "Role")
    ]
    expected = {
        (kind, namespace, name, json.dumps([_rule(r) for r in rules], sort_keys=True))
        for kind, namespace, name, rules in bootstrap_roles
        if (kind, namespace, name) in named
    }
    assert {
        (r["kind"], r["namespace"], r["name"], json.dumps(r["rules"], sort_keys=True))
        for r in shipped["roles"]
    } == expected


def _rule(raw: dict) -> dict:
    return {
        k: raw[k]
        for k in ("apiGroups", "resources", "resourceNames", "nonResourceURLs", "verbs")
        if raw.get(k)
    }


def test_the_whole_bootstrap_policy_is_no_finding():
    report = scan(rbac_list())
    assert [f.check_id for f in fails(report) if f.check_id.startswith("rbac.")] == []


def test_a_system_name_hides_no_grant():
    # The bypass: anyone who may create bindings could name one system:… and vanish.
    helper = cluster_role_binding(
        "system:metrics-helper", "metrics-everything", ("User", "mallory")
    )
    helper["metadata"]["labels"] = BOOTSTRAP_LABELS
    report = scan(rbac_list(cluster_role("metrics-everything", WILDCARD), helper))
    wildcard = finding(report, "rbac.wildcard")
    assert wildcard.status is Status.FAIL
    assert wildcard.resource == "ClusterRoleBinding system:metrics-helper"
    admin = scan(
        rbac_list(cluster_role_binding("mallory-admin", "cluster-admin", ("User", "mallory")))
    )
    assert report.mut_credential == admin.mut_credential < scan(rbac_list()).mut_credential


def test_a_platform_name_with_other_subjects_is_judged_and_says_so():
    items = [copy.deepcopy(i) for i in bootstrap_items()]
    masters = next(i for i in items if i["metadata"]["name"] == "cluster-admin" and "roleRef" in i)
    masters["subjects"].append(
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}
    )
    report = scan(rbac_list(*items, bootstrap=False))
    # system:masters stays the platform's; the subject the platform never binds is judged.
    (wildcard,) = [f for f in fails(report) if f.check_id == "rbac.wildcard"]
    assert "lets User mallory use every verb" in wildcard.detail
    assert (
        "named like the Kubernetes bootstrap policy's ClusterRoleBinding cluster-admin, which "
        "does not bind this subject" in wildcard.detail
    )


def test_a_platform_name_bound_to_another_role_is_judged_and_says_so():
    impostor = cluster_role_binding("system:kube-dns", "cluster-admin", ("User", "mallory"))
    items = [i for i in bootstrap_items() if i["metadata"]["name"] != "system:kube-dns"]
    report = scan(rbac_list(*items, impostor, bootstrap=False))
    wildcard = finding(report, "rbac.wildcard")
    assert wildcard.status is Status.FAIL
    assert "named like the Kubernetes bootstrap policy's ClusterRoleBinding" in wildcard.detail
    assert "but binds another role" in wildcard.detail


def test_a_platform_binding_whose_role_grants_more_is_judged_and_says_so():
    items = [copy.deepcopy(i) for i in bootstrap_items()]
    scheduler = next(
        i
        for i in items
        if i["kind"] == "ClusterRole" and i["metadata"]["name"] == "system:kube-scheduler"
    )
    scheduler["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]})
    report = scan(rbac_list(*items, bootstrap=False))
    secrets = finding(report, "rbac.secrets_read")
    assert secrets.status is Status.FAIL
    assert secrets.resource == "ClusterRoleBinding system:kube-scheduler"
    assert "grants more than the platform's" in secrets.detail


@pytest.mark.parametrize(
    "extra", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
)
def test_a_platform_role_with_a_harmless_extra_rule_stays_the_platforms(extra):
    # Versions add rules to the bootstrap roles; what matters is that no dangerous power is added.
    items = [copy.deepcopy(i) for i in bootstrap_items()]
    scheduler = next(
        i
        for i in items
        if i["kind"] == "ClusterRole" and i["metadata"]["name"] == "system:kube-scheduler"
    )
    scheduler["rules"].append(extra)
    report = scan(rbac_list(*items, bootstrap=False))
    assert [f.check_id for f in fails(report) if f.check_id.startswith("rbac.")] == []


# The providers' own objects, from mutguard/data/platform_rbac/<provider>.json (SOURCES.md cites
# each): recognised on that provider's clusters only.
AKS_LOCAL_ADMIN = cluster_role_binding(
    "aks-cluster-admin-binding", "cluster-admin", ("User", "clusterAdmin"), ("User", "clusterUser")
)
EKS_ADDON_ADMIN = cluster_role_binding(
    "eks:addon-cluster-admin", "cluster-admin", ("User", "eks:addon-manager")
)


def aks_scan(*items: dict):
    cluster = json.loads((BOOTSTRAP_RBAC.parent / "aks" / "az-aks-show.json").read_text())
    return evaluate(
        ClusterSource(
            Provider.AKS,
            cluster["name"],
            documents={"cluster.json": cluster, "rbac.json": rbac_list(*items)},
        ),
        OBSERVED_AT,
    )


def test_a_providers_own_binding_is_no_finding_on_its_clusters():
    assert finding(scan(rbac_list(EKS_ADDON_ADMIN)), "rbac.wildcard").status is Status.PASS
    # AKS's local-account binding: its risk is aks.auth.local_accounts, not also RBAC findings.
    assert finding(aks_scan(AKS_LOCAL_ADMIN), "rbac.wildcard").status is Status.PASS


def test_a_providers_object_counts_on_another_providers_cluster():
    # On EKS nothing creates aks-cluster-admin-binding: whoever did granted cluster-admin.
    on_eks = [
        f.detail for f in fails(scan(rbac_list(AKS_LOCAL_ADMIN))) if f.check_id == "rbac.wildcard"
    ]
    assert len(on_eks) == 2  # clusterAdmin and clusterUser
    assert finding(aks_scan(EKS_ADDON_ADMIN), "rbac.wildcard").status is Status.FAIL


def test_a_providers_binding_with_one_more_subject_fails_for_that_subject():
    grown = copy.deepcopy(EKS_ADDON_ADMIN)
    grown["subjects"].append(
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"}
    )
    (wildcard,) = [f for f in fails(scan(rbac_list(grown))) if f.check_id == "rbac.wildcard"]
    assert "lets Group devs use every verb" in wildcard.detail
    assert "named like Amazon EKS's ClusterRoleBinding eks:addon-cluster-admin" in wildcard.detail


def test_the_report_lists_the_platforms_grants_with_why_and_explain_shows_them():
    report = scan(rbac_list(EKS_ADDON_ADMIN))
    grants = {(g.binding, g.subject): g for g in report.platform_grants}
    addon = grants[("ClusterRoleBinding eks:addon-cluster-admin", "User eks:addon-manager")]
    assert addon.power == "use every verb on every resource"
    assert addon.why.startswith("Amazon EKS's own (its roleRef, subjects and role's grants)")
    # The citation is named by its place in the catalogue, which holds it.
    source_id, catalogue_file = addon.why.split("source: ", 1)[1].split(";")[0].split(" in ")
    catalogue = json.loads((PLATFORM_RBAC / catalogue_file).read_text())
    assert catalogue_file == "eks.json" and catalogue["sources"][source_id]
    masters = grants[("ClusterRoleBinding cluster-admin", "Group system:masters")]
    assert masters.why.startswith("the Kubernetes bootstrap policy's own")
    # A look-alike is a finding, never a platform grant.
    impostor = cluster_role_binding("system:metrics-helper", "cluster-admin", ("User", "mallory"))
    assert not any(g.subject == "User mallory" for g in scan(rbac_list(impostor)).platform_grants)
    text = explain(report)
    assert "The platform's own grants (not findings)" in text
    assert "ClusterRoleBinding eks:addon-cluster-admin lets User eks:addon-manager" in text


def _catalogued_objects(provider: str) -> list[dict]:
    """A provider's catalogued roles and bindings as the API server returns them: what the
    cited sources show that provider creating (one variant of each role)."""
    catalogue = json.loads(
        resources.files("mutguard")
        .joinpath("data", "platform_rbac", f"{provider}.json")
        .read_text()
    )
    objects, seen = [], set()
    for role in catalogue["roles"]:
        key = (role["kind"], role["namespace"], role["name"])
        if key in seen:
            continue
        seen.add(key)
        metadata = {
            "name": role["name"],
            **({"namespace": ns} if (ns := role["namespace"]) else {}),
        }
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": role["kind"],
                "metadata": metadata,
                "rules": role["rules"],
            }
        )
    for binding in catalogue["bindings"]:
        key = (binding["kind"], binding["namespace"], binding["name"])
        if key in seen:
            continue  # a second variant of the same object cannot exist beside the first
        seen.add(key)
        metadata = {"name": binding["name"]}
        if binding["namespace"]:
            metadata["namespace"] = binding["namespace"]
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": binding["kind"],
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", **binding["roleRef"]},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", **s}
                    if s["kind"] != "ServiceAccount"
                    else s
                    for s in binding["subjects"]
                ],
            }
        )
    return objects


def _gke_scan(*items: dict):
    return assess_gke(gke_cluster(), rbac=rbac_list(*items))


@pytest.mark.parametrize(
    ("provider", "scan_with"), [("eks", scan), ("gke", _gke_scan), ("aks", aks_scan)]
)
def test_unchanged_provider_built_ins_make_no_rbac_failure(provider, scan_with):
    objects = _catalogued_objects(provider)
    report = scan_with(*objects) if provider != "eks" else scan_with(rbac_list(*objects))
    assert [f.detail for f in fails(report) if f.check_id.startswith("rbac.")] == []
    # Their dangerous grants are not lost: they are the platform's, with why.
    provider_grants = [g for g in report.platform_grants if "source: " in g.why]
    assert provider_grants


def test_a_platform_binding_without_its_role_is_no_finding_but_a_grown_one_is():
    # eks:addon-manager's ClusterRole is not catalogued (no source shows its rules): without it,
    # the binding is still the platform's; with one more subject, that subject is the user's.
    (platform,) = [
        o for o in _catalogued_objects("eks") if o["metadata"]["name"] == "eks:addon-manager"
    ]
    assert finding(scan(rbac_list(platform)), "rbac.dangling_binding").status is Status.PASS
    grown = copy.deepcopy(platform)
    grown["subjects"].append(
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}
    )
    dangling = finding(scan(rbac_list(grown)), "rbac.dangling_binding")
    assert dangling.status is Status.FAIL and "User eve" in dangling.detail


ADDON_MANAGER_ROLE = cluster_role("eks:addon-manager", WILDCARD)  # rules no source shows


def test_a_catalogued_binding_adds_nothing_its_subject_already_holds_through_the_platform():
    # User eks:addon-manager is cluster-admin through eks:addon-cluster-admin; whatever the
    # uncatalogued ClusterRole eks:addon-manager holds, binding it to that user adds no holder.
    (binding,) = [
        o for o in _catalogued_objects("eks") if o["metadata"]["name"] == "eks:addon-manager"
    ]
    report = scan(rbac_list(EKS_ADDON_ADMIN, ADDON_MANAGER_ROLE, binding))
    assert [f for f in fails(report) if f.check_id.startswith("rbac.")] == []
    (why,) = {
        g.why
        for g in report.platform_grants
        if g.binding == "ClusterRoleBinding eks:addon-manager" and g.power.startswith("use every")
    }
    assert "through the platform's ClusterRoleBinding eks:addon-cluster-admin anyway" in why
    # Without the platform's cluster-admin binding the same role is a grant to judge.
    alone = scan(rbac_list(ADDON_MANAGER_ROLE, binding))
    assert finding(alone, "rbac.wildcard").status is Status.FAIL
    # And a subject the catalogue does not list gains the power: the user's finding.
    grown = copy.deepcopy(binding)
    grown["subjects"].append(
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}
    )
    wildcard = finding(scan(rbac_list(EKS_ADDON_ADMIN, ADDON_MANAGER_ROLE, grown)), "rbac.wildcard")
    assert wildcard.status is Status.FAIL and "User eve" in wildcard.detail


@pytest.mark.parametrize(
    ("provider", "scan_with"), [("eks", scan), ("gke", _gke_scan), ("aks", aks_scan)]
)
def test_every_catalogued_variant_of_a_providers_role_makes_no_rbac_failure(provider, scan_with):
    # The built-ins test builds the first variant of each role; a cluster may carry any of them
    # (AKS Engine's system:azure-cloud-provider-secret-getter lacks the upstream resourceNames).
    catalogue = json.loads(
        resources.files("mutguard")
        .joinpath("data", "platform_rbac", f"{provider}.json")
        .read_text()
    )
    first, later = set(), []
    for role in catalogue["roles"]:
        key = (role["kind"], role["namespace"], role["name"])
        if key in first:
            later.append(role)
        first.add(key)
    for role in later:
        objects = copy.deepcopy(_catalogued_objects(provider))
        (built,) = [
            o
            for o in objects
            if (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
            == (role["kind"], role["namespace"], role["name"])
        ]
        built["rules"] = role["rules"]
        report = scan_with(*objects) if provider != "eks" else scan_with(rbac_list(*objects))
        assert [f.detail for f in fails(report) if f.check_id.startswith("rbac.")] == [], role
