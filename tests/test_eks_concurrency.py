"""Live EKS collection region by region: each region of each account is read at once with the
others, at most --concurrency calls at a time, a slow or throttling region holding back only
itself; and a cluster costs only the calls that can apply to it. Real boto3 against moto_server,
EksGapServer and, in front of them, servers/eks_regions.py, which gives each region its own
latency and throttling and reports the access configuration moto drops."""

import logging
import threading
import time

import boto3
import pytest

from mutguard.models import Status
from mutguard.providers.eks_live import AwsOptions, EksCollector
from mutguard.providers.tasks import Lane, run_tasks
from mutguard.scan import build_report
from mutguard.sources import ClusterSource, ScanError

from builders import OBSERVED_AT
from servers.aws import AwsFakes
from servers.eks_regions import RegionProxy

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2")
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@pytest.fixture
def regions(aws: AwsFakes, monkeypatch):
    """EKS reached through a RegionProxy in front of the EksGapServer."""
    with RegionProxy(aws.eks_gap.url) as proxy:
        monkeypatch.setitem(aws.env, "AWS_ENDPOINT_URL_EKS", proxy.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_EKS", proxy.url)
        yield proxy


def create(aws: AwsFakes, proxy: RegionProxy, clusters: dict[str, int]) -> None:
    """`count` clusters named c0, c1, ... in each region; the proxy then forgets their creation."""
    session = aws.session()
    for region, count in clusters.items():
        for number in range(count):
            aws.create_cluster(session, region, f"c{number}", version="1.34")
    proxy.reset_visits()


def collect_timed(**options) -> list[tuple[float, ClusterSource | ScanError]]:
    """Each item with the seconds since the scan began when it was yielded."""
    options.setdefault("in_cluster", False)  # moto's endpoints are fake names: never dial them
    started = time.monotonic()
    return [
        (time.monotonic() - started, item) for item in EksCollector(AwsOptions(**options)).collect()
    ]


def read_cleanly(items) -> set[tuple[str, str]]:
    """(region, name) of every cluster read; fails on any error."""
    assert [i for i in items if isinstance(i, ScanError)] == []
    sources = [i for i in items if isinstance(i, ClusterSource)]
    assert [(s.location, s.name, s.errors) for s in sources if s.errors] == []
    return {(s.location, s.name) for s in sources}


def test_regions_are_read_at_once_each_at_its_own_concurrency(aws, regions):
    # One call at a time per region, 0.2 s each: a region alone is ListClusters plus three
    # calls per cluster, ten calls, about 2 s; the four regions one after another would be 8 s.
    create(aws, regions, dict.fromkeys(REGIONS, 3))
    regions.latency(0.2)
    timed = collect_timed(regions=REGIONS, concurrency=1)
    took = timed[-1][0]
    assert len(read_cleanly([item for _, item in timed])) == 12
    calls = {r: len(regions.visits(r)) for r in REGIONS}
    assert calls == dict.fromkeys(REGIONS, 10)
    one_after_another = sum(calls.values()) * 0.2
    assert took < 0.6 * one_after_another, f"took {took:.1f} s"
    # --concurrency holds per region: never two calls to one region at once, all four at once.
    assert {r: RegionProxy.most_in_flight(regions.visits(r)) for r in REGIONS} == dict.fromkeys(
        REGIONS, 1
    )
    assert RegionProxy.most_in_flight(regions.visits()) == len(REGIONS)


def test_a_slow_region_does_not_delay_the_others(aws, regions):
    slow, fast = REGIONS[0], REGIONS[1:]
    create(aws, regions, {slow: 1, **dict.fromkeys(fast, 4)})
    regions.latency(0.02)
    regions.latency(1.0, region=slow)  # its one cluster comes after 4 s: 4 calls of 1 s
    timed = collect_timed(regions=REGIONS, concurrency=1)
    read_cleanly([item for _, item in timed])
    slow_at = next(t for t, item in timed if item.location == slow)
    fast_done = max(t for t, item in timed if item.location in fast)
    assert slow_at >= 4.0
    # 13 calls of 20 ms per fast region; sharing one pool with the slow region's calls they
    # would come after them.
    assert fast_done < 2.0, f"the fast regions took {fast_done:.1f} s"


def test_a_throttling_region_backs_off_alone(aws, regions, caplog):
    throttled, others = REGIONS[0], REGIONS[1:]
    create(aws, regions, {throttled: 12, **dict.fromkeys(others, 6)})
    regions.latency(0.1)
    regions.throttle(throttled, in_flight=2)
    with caplog.at_level(logging.INFO, logger="mutguard.providers.tasks"):
        timed = collect_timed(regions=REGIONS, concurrency=8)
    report = build_report([item for _, item in timed], OBSERVED_AT)
    assert report.errors == [] and [c.errors for c in report.clusters if c.errors] == []
    assert len(read_cleanly([item for _, item in timed])) == 12 + 6 * len(others)

    visits = regions.visits()
    assert {v.region for v in visits if v.throttled} == {throttled}
    mine = [v for v in visits if v.region == throttled]
    answered = [v for v in mine if not v.throttled]
    # The first wave sends 8 calls and 6 come back throttled; from then on the region's
    # concurrency stays near what it accepts, so most calls are answered.
    assert len(mine) - len(answered) < 0.35 * len(mine), (len(mine), len(answered))
    # The region's lane cut its concurrency (botocore's retries would also space the calls
    # out, so the calls alone do not show it); no other region's did.
    cuts = [r.getMessage() for r in caplog.records if " throttles: " in r.getMessage()]
    assert cuts and all(f"region {throttled} throttles: " in cut for cut in cuts), cuts
    assert int(cuts[0].split("throttles: ")[1].split()[0]) < 8
    # The other regions went on at their full concurrency and were done long before.
    other_visits = [v for v in visits if v.region in others]
    assert max(RegionProxy.most_in_flight(regions.visits(r)) for r in others) == 6
    others_done = max(v.left for v in other_visits)
    assert others_done < max(v.left for v in mine)
    assert others_done - min(v.arrived for v in visits) < 2.5


def test_throttled_answers_halve_a_lane_once_per_window_and_it_grows_back():
    lane = Lane(4)
    all_running = threading.Barrier(4, timeout=10)
    running, most = 0, [0]
    lock = threading.Lock()

    def burst():
        all_running.wait()  # four calls in flight, each answered throttled
        lane.answered(throttled=True)
        return [], []

    def counted():
        nonlocal running
        with lock:
            running += 1
            most[0] = max(most[0], running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return [], []

    list(run_tasks([lane.bind(burst) for _ in range(4)], concurrency=1))
    assert lane.limit == 2  # one burst, one cut
    list(run_tasks([lane.bind(counted) for _ in range(6)], concurrency=1))
    assert most[0] == 2
    lane.answered(throttled=True)  # a later throttle, outside the window: cut again
    assert lane.limit == 1
    lane.answered(throttled=True)
    assert lane.limit == 1  # never below one
    for _ in range(20):
        lane.answered(throttled=False)
    assert lane.limit == 4  # grows back, never above the ceiling


def test_config_map_clusters_cost_no_access_entry_call(aws, regions):
    region = "us-east-1"
    session = boto3.Session()
    for name in ("legacy", "mixed", "modern", "unreported"):
        aws.create_cluster(session, region, name, version="1.34")
    regions.reset_visits()
    regions.access_config(region, "legacy", "CONFIG_MAP", bootstrap_admin=True)
    regions.access_config(region, "mixed", "API_AND_CONFIG_MAP")
    regions.access_config(region, "modern", "API")
    for name in ("mixed", "modern", "unreported"):
        aws.eks_gap.add_access_entry(
            region,
            name,
            {"principalArn": "arn:aws:iam::123456789012:role/admins", "type": "STANDARD"},
            [{"policyArn": ADMIN_POLICY, "accessScope": {"type": "cluster", "namespaces": []}}],
        )
    calls: list[tuple[str, str]] = []
    session.events.register(
        "before-parameter-build.eks.*",
        lambda model, params, **_: calls.append((model.name, params.get("clusterName"))),
    )
    options = AwsOptions(regions=(region,), in_cluster=False)
    items = list(EksCollector(options, session=session).collect())
    report = build_report(items, OBSERVED_AT)

    listed = {name for operation, name in calls if operation == "ListAccessEntries"}
    assert listed == {"mixed", "modern", "unreported"}
    assert not [c for c in calls if c[1] == "legacy" and "Access" in c[0]]
    assert {name for operation, name in calls if operation == "ListIdentityProviderConfigs"} == {
        "legacy",
        "mixed",
        "modern",
        "unreported",
    }
    assert regions.requests_seen("*", "/clusters/legacy/access-entries.*") == 0

    clusters = {c.name: c for c in report.clusters}
    assert report.errors == []
    assert {n: c.errors for n, c in clusters.items() if c.errors} == {}

    def verdicts(name):
        return {
            f.check_id: f.status for f in clusters[name].findings if f.check_id.startswith("eks.")
        }

    legacy = verdicts("legacy")
    # No access entries exist in CONFIG_MAP mode: a fact, so nothing is unknown about them.
    assert "eks.access.admin_policy" not in legacy
    assert legacy["eks.auth.access_entries"] is Status.FAIL
    assert legacy["eks.auth.api_only"] is Status.FAIL
    assert legacy["eks.access.bootstrap_creator_admin"] is Status.FAIL
    assert legacy["eks.auth.oidc_prefixes"] is Status.PASS
    assert not [b for b in clusters["legacy"].mut_basis if "access entr" in b]
    for name in ("mixed", "modern", "unreported"):
        assert verdicts(name)["eks.access.admin_policy"] is Status.FAIL, name
    assert verdicts("unreported")["eks.auth.access_entries"] is Status.UNKNOWN


def test_config_map_is_read_from_the_cluster_not_assumed(aws, regions):
    """A cluster whose mode is not reported is asked for its access entries: a refusal is
    recorded, and the checks that need them say UNKNOWN with the reason, never PASS."""
    region = "us-east-1"
    aws.create_cluster(aws.session(), region, "quiet", version="1.34")
    aws.eks_gap.add_fault(
        "GET",
        "/clusters/quiet/access-entries",
        400,
        "InvalidRequestException",
        "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP]",
    )
    items = list(EksCollector(AwsOptions(regions=(region,), in_cluster=False)).collect())
    (cluster,) = build_report(items, OBSERVED_AT).clusters
    admin = next(f for f in cluster.findings if f.check_id == "eks.access.admin_policy")
    assert admin.status is Status.UNKNOWN and "InvalidRequestException" in admin.detail
    assert any("eks:ListAccessEntries" in e for e in cluster.errors)
