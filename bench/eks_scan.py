"""Benchmark: how fast mutguard reads a fleet of EKS clusters, and how fast it starts.

300 clusters in 10 regions live in moto_server; EKS requests reach it through EksGapServer (the
test suite's fake for the access-entry and identity-provider APIs moto lacks), which sleeps 50 ms
before answering each request: a real AWS call costs tens of milliseconds, and bare moto_server is
CPU-bound, which would hide what concurrency buys. One run prints:

- the parallel scan (concurrency 16) against a one-at-a-time scan (concurrency 1): target >= 5x;
- the parallel scan against the floor, plain boto3 making the same calls with the same thread
  count and botocore Config but no mutguard code: target <= 1.3x;
- the start-up of a fresh interpreter importing what a live `mutguard scan` imports, against
  `python -c "import boto3, pydantic"`: target <= 1.15x.

Targets are reported, not enforced (ratios vary by machine): the exit status is 0 unless the
benchmark itself could not run or a scan did not see every cluster without errors.
Run with `make bench` or `.venv/bin/python bench/eks_scan.py` (--help for options).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mutguard.providers.eks import ACCESS_ENTRIES_DOC, IDENTITY_PROVIDERS_DOC
from mutguard.providers.eks_live import AwsOptions, EksCollector
from mutguard.scan import build_report
from mutguard.sources import ClusterSource, ScanError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers.aws import DEFAULT_ACCOUNT, aws_env  # noqa: E402
from servers.eks_gap import EksGapServer  # noqa: E402
from servers.moto import MotoServer  # noqa: E402

REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
)
CLUSTERS_PER_REGION = 30
LATENCY_SECONDS = 0.05
CONCURRENCY = 16
ENTRIES_PER_CLUSTER = 2
OIDC_PER_CLUSTER = 1
SETUP_THREADS = 16
# (access entries, associated policies, OIDC configs) every scan must read for every cluster
EXPECTED_PER_CLUSTER = (ENTRIES_PER_CLUSTER, ENTRIES_PER_CLUSTER, OIDC_PER_CLUSTER)

TARGET_SEQUENTIAL = 5.0  # parallel must be at least this many times faster than sequential
TARGET_FLOOR = 1.3  # parallel may take at most this many times the bare boto3 floor
TARGET_STARTUP = 1.15  # start-up may take at most this many times `import boto3, pydantic`

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EDIT_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"

# The botocore Config of the floor: what mutguard's collector uses (adaptive retries, one pooled
# connection per thread), minus its user-agent suffix.
FLOOR_MAX_ATTEMPTS = AwsOptions().max_attempts


class BenchError(Exception):
    """The benchmark could not run, or a scan did not see the fleet it was meant to see."""


@dataclass
class Fleet:
    regions: tuple[str, ...]
    clusters: dict[str, list[str]]  # region -> cluster names

    def subset(self, regions: tuple[str, ...]) -> Fleet:
        return Fleet(regions, {r: self.clusters[r] for r in regions})

    @property
    def size(self) -> int:
        return sum(len(names) for names in self.clusters.values())


@dataclass
class Timing:
    label: str
    seconds: list[float] = field(default_factory=list)
    requests: int = 0
    parts: dict[str, list[float]] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def part(self, name: str) -> float:
        return statistics.median(self.parts[name])


def log(message: str = "") -> None:
    print(message, flush=True)


# --- the fleet -------------------------------------------------------------------------------


def cluster_settings(region: str, index: int) -> dict[str, Any]:
    """create_cluster parameters that vary the way a real fleet does."""
    public = index % 3 != 0
    settings: dict[str, Any] = {
        "version": "1.33",
        "roleArn": f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/eks-cluster",
        "resourcesVpcConfig": {
            "subnetIds": [f"subnet-0a1b2c3d4e5f6{index:04d}", f"subnet-0b1b2c3d4e5f6{index:04d}"],
            "securityGroupIds": [f"sg-0c1b2c3d4e5f6{index:04d}"],
            "endpointPublicAccess": public,
            "endpointPrivateAccess": True,
            "publicAccessCidrs": ["0.0.0.0/0"] if index % 2 else ["203.0.113.0/24"],
        },
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "10.100.0.0/16", "ipFamily": "ipv4"},
        "logging": {
            "clusterLogging": [
                {"types": ["api", "audit", "authenticator"], "enabled": index % 4 != 0},
                {"types": ["controllerManager", "scheduler"], "enabled": False},
            ]
        },
        # Dropped by moto 5 (see tests/servers/aws.py); sent anyway, as a real caller would.
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
        "tags": {"team": f"team-{index % 7}", "env": "prod" if index % 5 == 0 else "dev"},
    }
    if index % 2 == 0:
        key = f"arn:aws:kms:{region}:{DEFAULT_ACCOUNT}:key/0000-{index:04d}"
        settings["encryptionConfig"] = [{"resources": ["secrets"], "provider": {"keyArn": key}}]
    return settings


def register_access(gap: EksGapServer, region: str, name: str, index: int) -> None:
    """Two access entries (one policy each) and one OIDC config, served by the proxy."""
    team = f"team-{index % 7}"
    gap.add_access_entry(
        region,
        name,
        {
            "principalArn": f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/platform-admins",
            "type": "STANDARD",
            "kubernetesGroups": [],
            "username": "platform-admins",
        },
        [{"policyArn": ADMIN_POLICY, "accessScope": {"type": "cluster", "namespaces": []}}],
    )
    gap.add_access_entry(
        region,
        name,
        {
            "principalArn": f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/{team}-developers",
            "type": "STANDARD",
            "kubernetesGroups": ["developers"],
            "username": f"{team}-developers",
        },
        [{"policyArn": EDIT_POLICY, "accessScope": {"type": "namespace", "namespaces": [team]}}],
    )
    gap.add_oidc_config(
        region,
        name,
        {
            "identityProviderConfigName": "corp-sso",
            "issuerUrl": "https://sso.example.com",
            "clientId": "kubernetes",
            "usernameClaim": "email",
            "groupsClaim": "groups",
        },
    )


def create_fleet(moto_url: str, gap: EksGapServer, regions: tuple[str, ...], per_region: int):
    """Create the clusters straight in moto (not through the slow proxy), many at a time."""
    session = boto3.Session()
    config = Config(max_pool_connections=SETUP_THREADS, retries={"mode": "standard"})
    clients = {
        r: session.client("eks", region_name=r, endpoint_url=moto_url, config=config)
        for r in regions
    }
    clients[regions[0]].list_clusters()  # moto loads EKS on its first request
    clusters = {r: [f"{r}-c{i:02d}" for i in range(per_region)] for r in regions}

    def create(region: str, index: int) -> None:
        name = clusters[region][index]
        clients[region].create_cluster(name=name, **cluster_settings(region, index))
        register_access(gap, region, name, index)

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        futures = [pool.submit(create, r, i) for r in regions for i in range(per_region)]
        for future in as_completed(futures):
            future.result()
    return Fleet(regions, clusters)


# --- the three scans -------------------------------------------------------------------------


def mutguard_scan(fleet: Fleet, concurrency: int) -> dict[str, float]:
    """The full scan, collect + build_report; returns the seconds of each part."""
    started = time.perf_counter()
    # moto's endpoints are invented names: the benchmark times the cloud API calls only.
    options = AwsOptions(regions=fleet.regions, concurrency=concurrency, in_cluster=False)
    items = list(EksCollector(options).collect())
    collected = time.perf_counter()
    report = build_report(items, datetime.now(UTC))
    reported = time.perf_counter()

    errors = [f"{i.scope}: {i.message}" for i in items if isinstance(i, ScanError)]
    sources = [i for i in items if isinstance(i, ClusterSource)]
    for source in sources:
        errors += [f"{source.origin}: {e}" for e in source.errors.values()]
        entries = source.documents.get(ACCESS_ENTRIES_DOC, [])
        oidc = source.documents.get(IDENTITY_PROVIDERS_DOC, [])
        policies = sum(len(e.get("associatedAccessPolicies", [])) for e in entries)
        if (len(entries), policies, len(oidc)) != EXPECTED_PER_CLUSTER:
            errors.append(
                f"{source.origin}: read {len(entries)} access entries, {policies} policies, "
                f"{len(oidc)} OIDC configs"
            )
    errors += [f"report {e.scope}: {e.message}" for e in report.errors]
    errors += [f"report {c.location}/{c.name}: {e}" for c in report.clusters for e in c.errors]
    check_fleet(
        f"mutguard scan (concurrency {concurrency})",
        fleet,
        {(s.location, s.name) for s in sources},
        len(report.clusters),
        errors,
    )
    return {"collect": collected - started, "build_report": reported - collected}


def floor_scan(fleet: Fleet, concurrency: int) -> dict[str, float]:
    """Plain boto3, no mutguard code: the same calls, threads and botocore Config."""
    started = time.perf_counter()
    session = boto3.Session()
    config = Config(
        retries={"mode": "adaptive", "total_max_attempts": FLOOR_MAX_ATTEMPTS},
        max_pool_connections=concurrency,
        connect_timeout=10,
        read_timeout=30,
    )
    clients = {r: session.client("eks", region_name=r, config=config) for r in fleet.regions}

    def list_region(region: str) -> tuple[str, list[str]]:
        pages = clients[region].get_paginator("list_clusters").paginate()
        return region, [name for page in pages for name in page["clusters"]]

    def read(region: str, name: str) -> dict[str, Any]:
        eks = clients[region]
        cluster = eks.describe_cluster(name=name)["cluster"]
        entries = []
        pages = eks.get_paginator("list_access_entries").paginate(clusterName=name)
        for principal in (arn for page in pages for arn in page["accessEntries"]):
            entry = eks.describe_access_entry(clusterName=name, principalArn=principal)
            policy_pages = eks.get_paginator("list_associated_access_policies").paginate(
                clusterName=name, principalArn=principal
            )
            policies = [p for page in policy_pages for p in page["associatedAccessPolicies"]]
            entries.append({"entry": entry["accessEntry"], "policies": policies})
        providers = []
        pages = eks.get_paginator("list_identity_provider_configs").paginate(clusterName=name)
        for config_ref in (c for page in pages for c in page["identityProviderConfigs"]):
            described = eks.describe_identity_provider_config(
                clusterName=name, identityProviderConfig=config_ref
            )
            providers.append(described["identityProviderConfig"])
        return {"region": region, "cluster": cluster, "entries": entries, "oidc": providers}

    with ThreadPoolExecutor(concurrency) as pool:
        listings = [pool.submit(list_region, region) for region in fleet.regions]
        reads = []
        for listing in as_completed(listings):
            region, names = listing.result()
            reads += [pool.submit(read, region, name) for name in names]
        results = [r.result() for r in reads]
    elapsed = time.perf_counter() - started

    errors = []
    for r in results:
        policies = sum(len(e["policies"]) for e in r["entries"])
        if (len(r["entries"]), policies, len(r["oidc"])) != EXPECTED_PER_CLUSTER:
            errors.append(f"{r['region']}/{r['cluster']['name']}: incomplete read")
    seen = {(r["region"], r["cluster"]["name"]) for r in results}
    check_fleet(f"bare boto3 (concurrency {concurrency})", fleet, seen, len(results), errors)
    return {"calls": elapsed}


def check_fleet(
    label: str, fleet: Fleet, seen: set[tuple[str, str]], count: int, errors: list[str]
) -> None:
    expected = {(r, n) for r, names in fleet.clusters.items() for n in names}
    problems = list(errors)
    if seen != expected or count != fleet.size:
        problems.append(
            f"saw {len(seen)} distinct clusters ({count} results), expected {fleet.size}; "
            f"missing {sorted(expected - seen)[:5]}, unexpected {sorted(seen - expected)[:5]}"
        )
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise BenchError(f"{label} did not read the fleet cleanly:\n  {shown}{more}")


def probe_latency(fleet: Fleet, calls: int = 10) -> tuple[float, float]:
    """Median seconds of one proxied request answered by the proxy, and by moto behind it."""
    region = fleet.regions[0]
    name = fleet.clusters[region][0]
    eks = boto3.Session().client("eks", region_name=region)

    def median_of(call: Callable[[], object]) -> float:
        call()  # connect first
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    return (
        median_of(lambda: eks.list_identity_provider_configs(clusterName=name)),
        median_of(lambda: eks.describe_cluster(name=name)),
    )


def timed(
    gap: EksGapServer, timing: Timing, scan: Callable[[], dict[str, float]]
) -> dict[str, float]:
    before = gap.requests_seen("*", ".*")
    parts = scan()
    timing.seconds.append(sum(parts.values()))
    timing.requests = gap.requests_seen("*", ".*") - before
    for name, seconds in parts.items():
        timing.parts.setdefault(name, []).append(seconds)
    return parts


# --- start-up --------------------------------------------------------------------------------

SCAN_ARGV = ["scan", "--provider", "aws", "--skip-in-cluster", "--regions", "us-east-1"]

# Runs a real `mutguard scan --provider aws` (table output to a file) and prints, as JSON, the
# mutguard modules it imported, in import order.
_DISCOVER = """
import json, sys
from mutguard.cli import main
code = main(sys.argv[1:])
print(json.dumps({"exit": code, "modules": [m for m in sys.modules if m.startswith("mutguard")]}))
"""


def startup_programs(modules: list[str]) -> dict[str, str]:
    argv = repr(SCAN_ARGV)
    imports = "\n".join(f"import {m}" for m in modules)
    return {
        "interpreter": "pass",
        "baseline": "import boto3, pydantic",
        # Everything a live scan imports over its whole run, and the CLI parsing its arguments.
        "live_scan": (
            f"{imports}\nimport mutguard.cli\nmutguard.cli.build_parser().parse_args({argv})"
        ),
        # Only what is imported before the first AWS API call.
        "first_call": (
            "import mutguard.cli\n"
            f"args = mutguard.cli.build_parser().parse_args({argv})\n"
            "from mutguard import providers\n"
            "live = providers.live(args.provider)\n"
            "live.AwsOptions(regions=args.regions, concurrency=args.concurrency)"
        ),
    }


def discover_scan_modules(env: dict[str, str], workdir: Path) -> tuple[list[str], float]:
    """The mutguard modules a real CLI scan of one region imports, and how long it took."""
    output = workdir / "report.txt"
    argv = [*SCAN_ARGV, "--format", "table", "-o", str(output)]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _DISCOVER, *argv],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"`mutguard {' '.join(argv)}` crashed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["exit"] != 0:
        raise BenchError(
            f"`mutguard {' '.join(argv)}` exited {result['exit']}:\n{done.stderr[-2000:]}"
        )
    return result["modules"], elapsed


def measure_startup(
    programs: dict[str, str], env: dict[str, str], workdir: Path, repeat: int
) -> dict[str, float]:
    """Median wall time of each program in a fresh interpreter, runs interleaved."""
    times: dict[str, list[float]] = {name: [] for name in programs}

    def run(code: str) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=workdir, capture_output=True, timeout=120
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"start-up program failed:\n{code}\n{done.stderr.decode()[-2000:]}")
        return elapsed

    for code in programs.values():  # warm the OS file cache and write any missing .pyc files
        run(code)
    for _ in range(repeat):
        for name, code in programs.items():
            times[name].append(run(code))
    return {name: statistics.median(values) for name, values in times.items()}


# --- the run ---------------------------------------------------------------------------------


@contextmanager
def servers(workdir: Path) -> Iterator[tuple[MotoServer, EksGapServer]]:
    """moto_server, the latency proxy in front of it, and os.environ pointing boto3 at both."""
    # Nothing from this machine's AWS setup (profiles, CA bundle, endpoints) may leak in.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    with MotoServer() as moto, EksGapServer(moto.url, latency_seconds=0.0) as gap:
        env = aws_env(moto.url, gap.url, workdir)
        os.environ.update(env)
        yield moto, gap


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(args: argparse.Namespace) -> bool:
    """Run the benchmark and print it; returns whether every target was met."""
    regions = REGIONS[: args.regions]
    with (
        tempfile.TemporaryDirectory(prefix="mutguard-bench-") as tmp,
        servers(Path(tmp)) as (moto, gap),
    ):
        workdir = Path(tmp)
        log("mutguard EKS scan benchmark")
        started = time.perf_counter()
        fleet = create_fleet(moto.url, gap, regions, args.clusters_per_region)
        log(
            f"setup: {fleet.size} clusters in {len(regions)} regions, each with "
            f"{ENTRIES_PER_CLUSTER} access entries (1 policy each) and {OIDC_PER_CLUSTER} OIDC "
            f"config, created in {time.perf_counter() - started:.1f} s"
        )

        # Untimed warm-up, before the latency is switched on: moto loads STS on first use,
        # and the first build_report pays for pydantic's lazy schema building.
        warm = fleet.subset(regions[:1])
        mutguard_scan(warm, CONCURRENCY)
        floor_scan(warm, CONCURRENCY)
        gap.latency_seconds = LATENCY_SECONDS
        local, forwarded = probe_latency(fleet)
        log(
            f"every EKS request now waits {LATENCY_SECONDS * 1000:.0f} ms in the proxy "
            f"(STS goes straight to moto); one request takes {local * 1000:.1f} ms when the "
            f"proxy answers it, {forwarded * 1000:.1f} ms when moto does"
        )
        log()

        parallel = Timing("parallel")
        floor = Timing("floor")
        for round_ in range(args.repeat):
            timed(gap, parallel, lambda: mutguard_scan(fleet, CONCURRENCY))
            timed(gap, floor, lambda: floor_scan(fleet, CONCURRENCY))
            log(
                f"round {round_ + 1}/{args.repeat}: mutguard parallel "
                f"{parallel.seconds[-1]:.2f} s, bare boto3 {floor.seconds[-1]:.2f} s"
            )

        sequential = Timing("sequential")
        seq_fleet = fleet.subset(regions[: args.sequential_regions])
        subset = seq_fleet.size < fleet.size
        log(
            f"sequential scan of {seq_fleet.size} clusters "
            f"(~{seq_fleet.size * 8 * LATENCY_SECONDS:.0f} s of added latency alone) ..."
        )
        timed(gap, sequential, lambda: mutguard_scan(seq_fleet, 1))
        parallel_same = parallel
        if subset:
            parallel_same = Timing("parallel-subset")
            for _ in range(args.repeat):
                timed(gap, parallel_same, lambda: mutguard_scan(seq_fleet, CONCURRENCY))

        log("start-up: a real `mutguard scan` of one region, to list the modules it imports ...")
        modules, cli_seconds = discover_scan_modules({**os.environ}, workdir)
        gap.latency_seconds = 0.0
        startup_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        startup = measure_startup(startup_programs(modules), startup_env, workdir, args.startup)
        log()

        log(f"scans of {fleet.size} clusters in {len(regions)} regions, median of {args.repeat}:")
        log(
            f"  mutguard, concurrency {CONCURRENCY}:  {parallel.median:7.2f} s  "
            f"(collect {parallel.part('collect'):.2f} s + build_report "
            f"{parallel.part('build_report'):.2f} s), {parallel.requests} proxied requests"
        )
        log(
            f"  bare boto3, {CONCURRENCY} threads:     {floor.median:7.2f} s  "
            f"(no mutguard code), {floor.requests} proxied requests"
        )
        log(
            f"  mutguard, concurrency 1:   {sequential.median:7.2f} s  "
            f"(collect {sequential.part('collect'):.2f} s + build_report "
            f"{sequential.part('build_report'):.2f} s), {sequential.requests} proxied requests"
            + (f" [subset: {seq_fleet.size} clusters, 1 run]" if subset else " [1 run]")
        )
        if subset:
            log(
                f"  mutguard, concurrency {CONCURRENCY} on the same {seq_fleet.size} clusters: "
                f"{parallel_same.median:.2f} s"
            )
        log()
        log(f"start-up, median of {args.startup} fresh interpreters:")
        log(f"  python -c pass:                          {startup['interpreter']:.3f} s")
        log(f"  python -c 'import boto3, pydantic':      {startup['baseline']:.3f} s")
        log(
            f"  a live scan's imports + CLI parser:      {startup['live_scan']:.3f} s  "
            f"({len(modules)} mutguard modules)"
        )
        log(f"  imports before the first AWS call:       {startup['first_call']:.3f} s")
        log(
            f"  (a whole `mutguard scan` of {len(fleet.clusters[regions[0]])} clusters in "
            f"{regions[0]}, 50 ms latency, as a subprocess: {cli_seconds:.2f} s)"
        )
        log()

        speedup = sequential.median / parallel_same.median
        over_floor = parallel.median / floor.median
        # Start-up is what a run pays before its first AWS call; the report models and the
        # renderer load afterwards, when the clusters have been read, and are counted apart.
        over_baseline = startup["first_call"] / startup["baseline"]
        whole_run = startup["live_scan"] / startup["baseline"]
        results = [
            speedup >= TARGET_SEQUENTIAL,
            over_floor <= TARGET_FLOOR,
            over_baseline <= TARGET_STARTUP,
        ]
        log("results:")
        same = f" (on the {seq_fleet.size}-cluster subset)" if subset else ""
        log(
            f"  parallel vs sequential: {speedup:.1f}x faster{same} "
            f"(target >= {TARGET_SEQUENTIAL:g}x)  {verdict(results[0])}"
        )
        log(
            f"  parallel vs bare boto3 floor: {over_floor:.2f}x "
            f"(target <= {TARGET_FLOOR:g}x)  {verdict(results[1])}"
        )
        log(
            f"  startup (CLI + imports before the first AWS call) vs import boto3+pydantic: "
            f"{over_baseline:.2f}x (target <= {TARGET_STARTUP:g}x)  {verdict(results[2])}"
        )
        log(f"    (every module a whole scan imports, report and renderer too: {whole_run:.2f}x)")
        return all(results)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", type=int, default=len(REGIONS), choices=range(1, 11))
    parser.add_argument("--clusters-per-region", type=int, default=CLUSTERS_PER_REGION)
    parser.add_argument(
        "--sequential-regions",
        type=int,
        default=None,
        help="scan only this many regions one at a time, and compare with a parallel scan of "
        "the same subset (default: every region; the full sequential scan takes ~2.5 min)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="parallel and floor scans")
    parser.add_argument("--startup", type=int, default=7, help="runs of each start-up program")
    args = parser.parse_args()
    if args.sequential_regions is None or args.sequential_regions > args.regions:
        args.sequential_regions = args.regions
    return args


def main() -> int:
    args = parse_args()
    try:
        met = run(args)
    except (BenchError, BotoCoreError, ClientError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    log("all targets met" if met else "some targets missed (reported, not enforced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
