"""MUT: the seed examples (docs/architecture.md, MUT), mut_gain, and the engine's path search."""

import pytest

from mutguard.mut import (
    ADMIN,
    ANONYMOUS,
    API,
    INTERNET,
    Contribution,
    Edge,
    Start,
    StartKind,
    compute,
)

from builders import assess, cluster_role_binding, describe_cluster, finding, rbac_list

ANONYMOUS_ON = {"anonymous_version": True, "anonymous_api": False}
ANONYMOUS_OFF = {"anonymous_version": False, "anonymous_api": False}
ANONYMOUS_ADMIN = cluster_role_binding(
    "anonymous-admin", "cluster-admin", ("Group", "system:unauthenticated")
)


@pytest.mark.parametrize(
    ("public", "probe", "extra_bindings", "expected"),
    [
        (True, ANONYMOUS_ON, [ANONYMOUS_ADMIN], 0),
        (True, ANONYMOUS_ON, [], 1),
        (True, ANONYMOUS_OFF, [], 2),
        (False, ANONYMOUS_OFF, [], 3),
    ],
    ids=["anonymous-cluster-admin", "anonymous-default-rbac", "public-no-anonymous", "private"],
)
def test_seed_examples(public, probe, extra_bindings, expected):
    report = assess(
        describe_cluster(public=public, private=not public),
        rbac=rbac_list(*extra_bindings),
        probe=probe,
    )
    assert report.mut == expected
    assert "mut" not in report.mut_upper_bound  # every barrier on the internet path was read
    internet = next(p for p in report.paths if p.from_ == "internet")
    assert internet.mut == expected
    assert len(internet.steps) == 3


def test_mut_gain_of_each_fix_on_the_mut_zero_cluster():
    report = assess(describe_cluster(), rbac=rbac_list(ANONYMOUS_ADMIN), probe=ANONYMOUS_ON)
    assert finding(report, "rbac.anonymous_admin").mut_gain == 1
    assert finding(report, "eks.endpoint.public_unrestricted").mut_gain == 1
    # Without anonymous auth the attacker needs a credential and a bad binding: 0 -> 2.
    assert finding(report, "eks.auth.anonymous").mut_gain == 2
    assert report.findings[0].mut_gain == 2  # ordered by how much the fix raises MUT
    assert finding(report, "eks.logging.audit").mut_gain == 0


def test_two_mistakes_opening_the_same_door_each_gain_nothing_alone():
    second = cluster_role_binding(
        "anonymous-admin-2", "cluster-admin", ("User", "system:anonymous")
    )
    report = assess(describe_cluster(), rbac=rbac_list(ANONYMOUS_ADMIN, second), probe=ANONYMOUS_ON)
    gains = [f.mut_gain for f in report.findings if f.check_id == "rbac.anonymous_admin"]
    assert gains == [0, 0]
    assert report.mut == 0


def test_unread_rbac_makes_mut_an_upper_bound_and_says_so():
    report = assess(describe_cluster(), probe=ANONYMOUS_ON)
    assert report.mut == 1
    assert "mut" in report.mut_upper_bound
    assert any("RBAC not read" in line for line in report.mut_basis)


def test_leaked_admin_credential_needs_only_the_network():
    from builders import access_entry

    entries = [
        access_entry(
            "arn:aws:iam::123456789012:role/admins", ("AmazonEKSClusterAdminPolicy", "cluster")
        )
    ]
    public = assess(
        describe_cluster(), rbac=rbac_list(), probe=ANONYMOUS_OFF, access_entries=entries
    )
    private = assess(
        describe_cluster(public=False, private=True),
        rbac=rbac_list(),
        probe=ANONYMOUS_OFF,
        access_entries=entries,
    )
    assert public.mut_credential == 1
    assert private.mut_credential == 2
    path = next(p for p in public.paths if p.from_.startswith("credential:"))
    assert "role/admins" in path.from_
    fix = finding(public, "eks.access.admin_policy", "arn:aws:iam::123456789012:role/admins")
    assert fix.mut_gain == 1 and fix.mut_gain_from == ["credential"]


def test_engine_prefers_the_cheapest_route_and_reports_its_steps():
    cheap = Edge(INTERNET, API, 0, "network", "open endpoint")
    anonymous = Edge(API, ANONYMOUS, 0, "authentication", "anonymous on")
    grant = Edge(ANONYMOUS, ADMIN, 0, "authorization", "bad binding")
    result = compute(
        [Contribution(0, (cheap,)), Contribution(1, (anonymous,)), Contribution(2, (grant,))]
    )
    route = result.routes[StartKind.INTERNET]
    assert route.mut == 0
    assert route.edges == (cheap, anonymous, grant)
    assert result.gains[1] == {
        StartKind.INTERNET: 2,  # a credential and a bad binding are needed instead
        StartKind.WORKLOAD: 1,  # the pod's token still authenticates
        StartKind.CREDENTIAL: 1,
    }


def test_engine_counts_the_start_mistake_for_credentials():
    admin = Start(
        StartKind.CREDENTIAL,
        "credential:x",
        INTERNET,
        "x leaks",
        edges=(Edge(API, ADMIN, 0, "authorization", "x is admin"),),
    )
    result = compute([Contribution(0, starts=(admin,))])
    assert result.mut(StartKind.CREDENTIAL) == 2  # the leak + the closed network barrier
    assert result.routes[StartKind.CREDENTIAL].steps()[0] == "start (1): x leaks"


def test_edges_cost_zero_or_one():
    with pytest.raises(ValueError, match="0 or 1"):
        Edge(INTERNET, API, 2, "network", "nonsense")
