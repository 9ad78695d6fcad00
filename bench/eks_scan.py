"""Benchmark: how fast mutguard reads a fleet of EKS clusters, and how fast it starts.

300 clusters in 10 regions live in moto_server. EKS requests reach them through RegionProxy
(tests/servers/eks_regions.py), which waits 50 ms before answering each one, as a real AWS call
takes tens of milliseconds, and in front of EksGapServer (the test suite's fake for the
access-entry and identity-provider APIs moto lacks). A third of the clusters are in CONFIG_MAP
mode, a third in API_AND_CONFIG_MAP, a third in API (the proxy reports the accessConfig moto
drops); the other two each have two access entries, and every cluster one OIDC config.

The servers run in a process of their own (this script with --serve), as AWS's servers do not
run in the scanner's interpreter, and the proxy answers a read it has answered before from
memory: the timed scans then pay the 50 ms and their own CPU, not moto's (~10 ms of one core per
DescribeCluster). On a machine of two cores or more the servers also run on cores of their own
(the first half) and the scanners, Prowler included, on the others: AWS's CPU is not the
scanner's, and sharing cores would time whichever tool is CPU-bound against the servers' load
rather than its own work. One run prints:

- mutguard (concurrency 16 per region) against Prowler (`prowler aws --service eks`, timed in
  the same run when `prowler` is on PATH or given with --prowler, else its recorded figure, said
  so): target >= 10x;
- mutguard against the floor, plain boto3 making the same calls (ListAccessEntries skipped for
  CONFIG_MAP clusters too) with 16 threads per region and the same botocore Config but no
  mutguard code: target <= 1.15x;
- mutguard against itself reading one call at a time (concurrency 1, one region after the
  other): target >= 5x;
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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mutguard.providers.eks import ACCESS_ENTRIES_DOC, IDENTITY_PROVIDERS_DOC
from mutguard.providers.eks_live import NODE_ENTRY_TYPES, AwsOptions, EksCollector
from mutguard.scan import build_report
from mutguard.sources import ClusterSource, ScanError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers.aws import DEFAULT_ACCOUNT, aws_env  # noqa: E402
from servers.eks_gap import EksGapServer  # noqa: E402
from servers.eks_regions import RegionProxy  # noqa: E402
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
MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")  # cluster i is in MODES[i % 3]
ENTRIES_PER_CLUSTER = 2  # in API and API_AND_CONFIG_MAP mode; none can exist in CONFIG_MAP
OIDC_PER_CLUSTER = 1
SETUP_THREADS = 16

# Prowler 5.46 `prowler aws --service eks` on this fleet (300 clusters, 10 regions, 50 ms per
# request), measured on the 2-core machine these targets are set for.
PROWLER_RECORDED_SECONDS = 32.5
TARGET_PROWLER = 10.0  # mutguard must be at least this many times faster than Prowler
TARGET_FLOOR = 1.15  # mutguard may take at most this many times the bare boto3 floor
TARGET_SEQUENTIAL = 5.0  # parallel must be at least this many times faster than sequential
TARGET_STARTUP = 1.15  # start-up may take at most this many times `import boto3, pydantic`

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EDIT_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"

# The botocore Config of the floor: what mutguard's collector uses (standard retries, one pooled
# connection per thread of a region), minus its user-agent suffix.
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
    cpu: list[float] = field(default_factory=list)  # CPU seconds of this process and children
    requests: int = 0
    parts: dict[str, list[float]] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def part(self, name: str) -> float:
        return statistics.median(self.parts[name])


def log(message: str = "") -> None:
    print(message, flush=True)


def mode_of(name: str) -> str:
    """The authentication mode of a fleet cluster, from its index in the name."""
    return MODES[int(name.rsplit("-c", 1)[1]) % len(MODES)]


def expected_reads(name: str) -> tuple[int | None, int, int]:
    """(access entries, associated policies, OIDC configs) a scan must read for a cluster:
    no access-entry document at all (None) in CONFIG_MAP mode."""
    if mode_of(name) == "CONFIG_MAP":
        return None, 0, OIDC_PER_CLUSTER
    return ENTRIES_PER_CLUSTER, ENTRIES_PER_CLUSTER, OIDC_PER_CLUSTER


# --- the fleet, served by a process of its own -----------------------------------------------


def cluster_settings(region: str, index: int, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """create_cluster parameters that vary the way a real fleet does."""
    public = index % 3 != 0
    settings: dict[str, Any] = {
        "version": "1.33",
        "roleArn": f"arn:aws:iam::{account}:role/eks-cluster",
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
        # Dropped by moto 5 (see tests/servers/aws.py), so the proxy reports it
        # (register_access); sent anyway, as a real caller would.
        "accessConfig": {
            "authenticationMode": MODES[index % len(MODES)],
            "bootstrapClusterCreatorAdminPermissions": index % 2 == 0,
        },
        "tags": {"team": f"team-{index % 7}", "env": "prod" if index % 5 == 0 else "dev"},
    }
    if index % 2 == 0:
        key = f"arn:aws:kms:{region}:{account}:key/0000-{index:04d}"
        settings["encryptionConfig"] = [{"resources": ["secrets"], "provider": {"keyArn": key}}]
    return settings


def register_access(
    gap: EksGapServer,
    proxy: RegionProxy,
    region: str,
    name: str,
    index: int,
    account: str = DEFAULT_ACCOUNT,
) -> None:
    """The cluster's authentication mode; in API modes two access entries (one policy each);
    and one OIDC config. The gap server and the proxy know clusters by region and name only, so
    a fleet of several accounts gives each cluster a name of its own."""
    mode = mode_of(name)
    proxy.access_config(region, name, mode, bootstrap_admin=index % 2 == 0)
    team = f"team-{index % 7}"
    if mode != "CONFIG_MAP":
        gap.add_access_entry(
            region,
            name,
            {
                "principalArn": f"arn:aws:iam::{account}:role/platform-admins",
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
                "principalArn": f"arn:aws:iam::{account}:role/{team}-developers",
                "type": "STANDARD",
                "kubernetesGroups": ["developers"],
                "username": f"{team}-developers",
            },
            [
                {
                    "policyArn": EDIT_POLICY,
                    "accessScope": {"type": "namespace", "namespaces": [team]},
                }
            ],
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


def create_fleet(
    moto_url: str,
    gap: EksGapServer,
    proxy: RegionProxy,
    regions: tuple[str, ...],
    per_region: int,
) -> Fleet:
    """Create the clusters straight in moto (not through the proxy), many at a time."""
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
        register_access(gap, proxy, region, name, index)

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        futures = [pool.submit(create, r, i) for r in regions for i in range(per_region)]
        for future in as_completed(futures):
            future.result()
    return Fleet(regions, clusters)


def remember_the_fleet(proxy: RegionProxy, fleet: Fleet) -> None:
    """Read the fleet once through the proxy (no latency yet), which keeps the answers."""
    proxy.remember_reads()
    session = boto3.Session()
    config = Config(max_pool_connections=SETUP_THREADS, retries={"mode": "standard"})
    clients = {r: session.client("eks", region_name=r, config=config) for r in fleet.regions}

    def read(region: str, name: str) -> None:
        clients[region].describe_cluster(name=name)

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        for region in fleet.regions:
            clients[region].list_clusters()
        futures = [pool.submit(read, r, n) for r, names in fleet.clusters.items() for n in names]
        for future in as_completed(futures):
            future.result()


def split_cores() -> tuple[set[int], set[int]] | None:
    """(the servers' cores, the scanners' cores), or None on a machine of one core."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    half = len(cores) // 2
    return set(cores[:half]), set(cores[half:])


def serve(regions: tuple[str, ...], per_region: int) -> int:
    """The servers' process: build the fleet, say where it is, then obey one JSON command per
    line of stdin ({"latency": seconds}, {"requests": true}) until stdin closes."""
    if cores := split_cores():
        os.sched_setaffinity(0, cores[0])  # moto_server, started below, inherits it
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    with (
        tempfile.TemporaryDirectory(prefix="mutguard-bench-servers-") as tmp,
        MotoServer() as moto,
        EksGapServer(moto.url) as gap,
        RegionProxy(gap.url) as proxy,
    ):
        os.environ.update(aws_env(moto.url, proxy.url, Path(tmp)))
        started = time.perf_counter()
        fleet = create_fleet(moto.url, gap, proxy, regions, per_region)
        remember_the_fleet(proxy, fleet)
        setup = time.perf_counter() - started
        info = {"moto": moto.url, "eks": proxy.url, "clusters": fleet.clusters, "setup": setup}
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if "latency" in command:
                proxy.latency(command["latency"])
            visits = proxy.visits()
            answer = {
                "requests": len(visits),
                "throttled": sum(v.throttled for v in visits),
                "describes": sum(1 for v in visits if v.method == "GET" and v.path.count("/") == 2),
            }
            print(json.dumps(answer), flush=True)
    return 0


class Servers:
    """The servers' process, seen from the benchmark."""

    def __init__(self, regions: tuple[str, ...], per_region: int) -> None:
        argv = [sys.executable, __file__, "--serve", "--regions", str(len(regions))]
        argv += ["--clusters-per-region", str(per_region)]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        first = self._read()
        self.moto_url: str = first["moto"]
        self.eks_url: str = first["eks"]
        self.setup_seconds: float = first["setup"]
        self.fleet = Fleet(regions, {r: list(n) for r, n in first["clusters"].items()})

    def _read(self) -> dict[str, Any]:
        stdout: IO[str] = self._process.stdout  # type: ignore[assignment]
        line = stdout.readline()
        if not line:
            raise BenchError(f"the servers' process ended (exit {self._process.wait()})")
        return json.loads(line)

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] = self._process.stdin  # type: ignore[assignment]
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        return self._read()

    def latency(self, seconds: float) -> None:
        self._ask({"latency": seconds})

    def counts(self) -> dict[str, int]:
        """Requests, throttled answers and DescribeCluster requests seen so far."""
        return self._ask({"requests": True})

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# --- the scans -------------------------------------------------------------------------------


def mutguard_scan(fleet: Fleet, concurrency: int) -> dict[str, float]:
    """A whole scan as `mutguard scan` runs it: each cluster assessed as soon as it is read,
    while the collector's threads read the next ones. Returns the seconds the scan waited for
    reads and the seconds it spent on the rest (assessing, mostly)."""
    options = AwsOptions(regions=fleet.regions, concurrency=concurrency, in_cluster=False)
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    waited = 0.0

    def checked(items: Iterator[ClusterSource | ScanError]) -> Iterator[ClusterSource | ScanError]:
        """The items, each checked for a complete read before it is assessed (assessing lets
        a source's documents go)."""
        nonlocal waited
        while True:
            asked = time.perf_counter()
            item = next(items, None)
            waited += time.perf_counter() - asked
            if item is None:
                return
            if isinstance(item, ScanError):
                errors.append(f"{item.scope}: {item.message}")
            else:
                seen.add((item.location, item.name))
                errors.extend(f"{item.origin}: {e}" for e in item.errors.values())
                entries = item.documents.get(ACCESS_ENTRIES_DOC)
                oidc = item.documents.get(IDENTITY_PROVIDERS_DOC, [])
                policies = sum(len(e.get("associatedAccessPolicies", [])) for e in entries or [])
                read = (None if entries is None else len(entries), policies, len(oidc))
                if read != expected_reads(item.name):
                    errors.append(
                        f"{item.origin}: read (access entries, policies, OIDC configs) {read}, "
                        f"expected {expected_reads(item.name)}"
                    )
            yield item

    started = time.perf_counter()
    report = build_report(checked(EksCollector(options).collect()), datetime.now(UTC))
    elapsed = time.perf_counter() - started
    errors += [f"report {e.scope}: {e.message}" for e in report.errors]
    errors += [f"report {c.location}/{c.name}: {e}" for c in report.clusters for e in c.errors]
    check_fleet(
        f"mutguard scan (concurrency {concurrency})", fleet, seen, len(report.clusters), errors
    )
    return {"waiting": waited, "assessing": elapsed - waited}


def sequential_scan(fleet: Fleet) -> dict[str, float]:
    """mutguard one call at a time: concurrency 1, one region after the other."""
    parts: dict[str, float] = {"waiting": 0.0, "assessing": 0.0}
    for region in fleet.regions:
        for name, seconds in mutguard_scan(fleet.subset((region,)), 1).items():
            parts[name] += seconds
    return parts


def floor_scan(fleet: Fleet, concurrency: int) -> dict[str, float]:
    """Plain boto3, no mutguard code: the same calls, `concurrency` threads per region and the
    same botocore Config."""
    started = time.perf_counter()
    session = boto3.Session()
    config = Config(
        retries={"mode": "standard", "total_max_attempts": FLOOR_MAX_ATTEMPTS},
        max_pool_connections=concurrency,
        connect_timeout=10,
        read_timeout=30,
    )
    clients = {r: session.client("eks", region_name=r, config=config) for r in fleet.regions}

    def list_region(region: str) -> list[str]:
        pages = clients[region].get_paginator("list_clusters").paginate()
        return [name for page in pages for name in page["clusters"]]

    def read(region: str, name: str) -> dict[str, Any]:
        eks = clients[region]
        cluster = eks.describe_cluster(name=name)["cluster"]
        entries = None
        if (cluster.get("accessConfig") or {}).get("authenticationMode") != "CONFIG_MAP":
            entries = []
            pages = eks.get_paginator("list_access_entries").paginate(clusterName=name)
            for principal in (arn for page in pages for arn in page["accessEntries"]):
                entry = eks.describe_access_entry(clusterName=name, principalArn=principal)
                policies = []
                if entry["accessEntry"].get("type") not in NODE_ENTRY_TYPES:
                    policy_pages = eks.get_paginator("list_associated_access_policies").paginate(
                        clusterName=name, principalArn=principal
                    )
                    policies = [
                        p for page in policy_pages for p in page["associatedAccessPolicies"]
                    ]
                entries.append({"entry": entry["accessEntry"], "policies": policies})
        providers = []
        pages = eks.get_paginator("list_identity_provider_configs").paginate(clusterName=name)
        for config_ref in (c for page in pages for c in page["identityProviderConfigs"]):
            described = eks.describe_identity_provider_config(
                clusterName=name, identityProviderConfig=config_ref
            )
            providers.append(described["identityProviderConfig"])
        return {"region": region, "cluster": cluster, "entries": entries, "oidc": providers}

    with ExitStack() as stack:
        pools = {r: stack.enter_context(ThreadPoolExecutor(concurrency)) for r in fleet.regions}
        listings = {pools[r].submit(list_region, r): r for r in fleet.regions}
        reads: list[Future[dict[str, Any]]] = []
        for listing in as_completed(listings):
            region = listings[listing]
            reads += [pools[region].submit(read, region, name) for name in listing.result()]
        results = [r.result() for r in reads]
    elapsed = time.perf_counter() - started

    errors = []
    for r in results:
        entries = r["entries"]
        policies = sum(len(e["policies"]) for e in entries or [])
        read_ = (None if entries is None else len(entries), policies, len(r["oidc"]))
        if read_ != expected_reads(r["cluster"]["name"]):
            errors.append(f"{r['region']}/{r['cluster']['name']}: incomplete read")
    seen = {(r["region"], r["cluster"]["name"]) for r in results}
    label = f"bare boto3 ({concurrency} threads per region)"
    check_fleet(label, fleet, seen, len(results), errors)
    return {"calls": elapsed}


def prowler_scan(prowler: str, fleet: Fleet, workdir: Path) -> dict[str, float]:
    """`prowler aws --service eks` over the fleet's regions, as a subprocess."""
    output = workdir / "prowler"
    argv = [prowler, "aws", "--service", "eks", "--region", *fleet.regions]
    argv += ["--no-banner", "--output-formats", "json-ocsf", "--output-directory", str(output)]
    started = time.perf_counter()
    done = subprocess.run(
        argv, env={**os.environ}, cwd=workdir, capture_output=True, text=True, timeout=1800
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 3):  # 3: some check failed
        raise BenchError(f"`{' '.join(argv)}` exited {done.returncode}:\n{done.stderr[-2000:]}")
    return {"prowler": elapsed}


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


def probe_latency(fleet: Fleet, calls: int = 10) -> float:
    """Median seconds of one proxied request."""
    region = fleet.regions[0]
    eks = boto3.Session().client("eks", region_name=region)
    name = fleet.clusters[region][0]
    eks.describe_cluster(name=name)  # connect first
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        eks.describe_cluster(name=name)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cpu_seconds() -> float:
    """CPU time of this process's threads and of its children waited for (Prowler); the
    servers' process is not waited for until the end, so it is not counted."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(servers: Servers, timing: Timing, scan: Callable[[], dict[str, float]]) -> dict[str, int]:
    """Run `scan`, add its seconds to `timing`; the requests (and throttled answers and
    DescribeCluster requests) the proxy saw during it."""
    before = servers.counts()
    cpu = cpu_seconds()
    parts = scan()
    timing.cpu.append(cpu_seconds() - cpu)
    after = servers.counts()
    timing.seconds.append(sum(parts.values()))
    seen = {name: after[name] - before[name] for name in after}
    timing.requests = seen["requests"]
    for name, seconds in parts.items():
        timing.parts.setdefault(name, []).append(seconds)
    return seen


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
def servers(regions: tuple[str, ...], per_region: int, workdir: Path) -> Iterator[Servers]:
    """The servers' process, and os.environ pointing boto3 at it."""
    # Nothing from this machine's AWS setup (profiles, CA bundle, endpoints) may leak in.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    fleet_servers = Servers(regions, per_region)
    if cores := split_cores():
        os.sched_setaffinity(0, cores[1])  # the scans, and Prowler's process, which inherits it
    try:
        os.environ.update(aws_env(fleet_servers.moto_url, fleet_servers.eks_url, workdir))
        yield fleet_servers
    finally:
        fleet_servers.close()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(args: argparse.Namespace) -> bool:
    """Run the benchmark and print it; returns whether every target was met."""
    regions = REGIONS[: args.regions]
    with (
        tempfile.TemporaryDirectory(prefix="mutguard-bench-") as tmp,
        servers(regions, args.clusters_per_region, Path(tmp)) as fleet_servers,
    ):
        workdir = Path(tmp)
        fleet = fleet_servers.fleet
        log("mutguard EKS scan benchmark")
        modes = ", ".join(f"1 in {len(MODES)} {mode}" for mode in MODES)
        log(
            f"setup: {fleet.size} clusters in {len(regions)} regions ({modes}); "
            f"{ENTRIES_PER_CLUSTER} access entries (1 policy each) on each cluster in an API "
            f"mode, {OIDC_PER_CLUSTER} OIDC config on every cluster; created and read once by "
            f"the servers' process in {fleet_servers.setup_seconds:.1f} s"
        )

        # Untimed warm-up, before the latency is switched on: moto loads STS on first use,
        # and the first build_report pays for pydantic's lazy schema building.
        warm = fleet.subset(regions[:1])
        mutguard_scan(warm, CONCURRENCY)
        floor_scan(warm, CONCURRENCY)
        fleet_servers.latency(LATENCY_SECONDS)
        log(
            f"every EKS request now waits {LATENCY_SECONDS * 1000:.0f} ms in the proxy "
            f"(STS goes straight to moto); one DescribeCluster takes "
            f"{probe_latency(fleet) * 1000:.1f} ms"
        )
        log()

        parallel = Timing("parallel")
        floor = Timing("floor")
        scans = [
            (parallel, lambda: mutguard_scan(fleet, CONCURRENCY)),
            (floor, lambda: floor_scan(fleet, CONCURRENCY)),
        ]
        for round_ in range(args.repeat):
            # Each goes first every other round, so neither always inherits the other's garbage
            # or warms the servers for it.
            for timing, scan in scans if round_ % 2 == 0 else reversed(scans):
                timed(fleet_servers, timing, scan)
            log(
                f"round {round_ + 1}/{args.repeat}: mutguard {parallel.seconds[-1]:.2f} s, "
                f"bare boto3 {floor.seconds[-1]:.2f} s"
            )
        if parallel.requests != floor.requests:
            raise BenchError(
                f"mutguard made {parallel.requests} requests, the floor {floor.requests}: "
                "the floor no longer makes the same calls"
            )

        prowler = Timing("prowler")
        prowler_seen: dict[str, int] = {}
        if args.prowler:
            log(f"Prowler: {args.prowler} aws --service eks over the same fleet ...")
            prowler_seen = timed(
                fleet_servers, prowler, lambda: prowler_scan(args.prowler, fleet, workdir)
            )
            if prowler_seen["describes"] < fleet.size:
                raise BenchError(
                    f"Prowler described {prowler_seen['describes']} of {fleet.size} clusters"
                )

        sequential = Timing("sequential")
        seq_fleet = fleet.subset(regions[: args.sequential_regions])
        subset = seq_fleet.size < fleet.size
        log(
            f"sequential scan of {seq_fleet.size} clusters, one call at a time "
            f"(~{parallel.requests * seq_fleet.size / fleet.size * LATENCY_SECONDS:.0f} s "
            "of latency alone) ..."
        )
        timed(fleet_servers, sequential, lambda: sequential_scan(seq_fleet))
        parallel_same = parallel
        if subset:
            parallel_same = Timing("parallel-subset")
            for _ in range(args.repeat):
                timed(fleet_servers, parallel_same, lambda: mutguard_scan(seq_fleet, CONCURRENCY))

        log("start-up: a real `mutguard scan` of one region, to list the modules it imports ...")
        modules, cli_seconds = discover_scan_modules({**os.environ}, workdir)
        fleet_servers.latency(0.0)
        startup_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        startup = measure_startup(startup_programs(modules), startup_env, workdir, args.startup)
        log()

        # The recorded figure is Prowler's on the default fleet only.
        recorded = (
            PROWLER_RECORDED_SECONDS
            if fleet.size == len(REGIONS) * CLUSTERS_PER_REGION and fleet.regions == REGIONS
            else None
        )
        log(f"scans of {fleet.size} clusters in {len(regions)} regions, median of {args.repeat}:")
        log(
            f"  mutguard, concurrency {CONCURRENCY} per region:  {parallel.median:6.2f} s  "
            f"(assessing {parallel.part('assessing'):.2f} s of it, while reads went on), "
            f"{parallel.requests} proxied requests, "
            f"{parallel.cpu_median:.2f} s CPU"
        )
        log(
            f"  bare boto3, {CONCURRENCY} threads per region:  {floor.median:6.2f} s  "
            f"(no mutguard code), {floor.requests} proxied requests, "
            f"{floor.cpu_median:.2f} s CPU"
        )
        if args.prowler:
            log(
                f"  Prowler, aws --service eks:          {prowler.median:6.2f} s  "
                f"(timed now, 1 run), {prowler.requests} proxied requests, "
                f"{prowler.cpu_median:.2f} s CPU"
            )
        elif recorded is not None:
            log(
                f"  Prowler, aws --service eks:          {recorded:6.2f} s  "
                "(recorded, not timed now: no `prowler` on PATH; see --prowler)"
            )
        log(
            f"  mutguard, concurrency 1, one region at a time: {sequential.median:.2f} s  "
            f"(assessing {sequential.part('assessing'):.2f} s of it), "
            f"{sequential.requests} proxied requests"
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

        prowler_seconds = prowler.median if args.prowler else recorded
        speedup = sequential.median / parallel_same.median
        # Each round's pair ran back to back: the median of their ratios leaves out what
        # drifts between rounds (the machine's other load), which a ratio of medians keeps.
        over_floor = statistics.median(
            m / f for m, f in zip(parallel.seconds, floor.seconds, strict=True)
        )
        # Start-up is what a run pays before its first AWS call; the report models and the
        # renderer load afterwards, when the clusters have been read, and are counted apart.
        over_baseline = startup["first_call"] / startup["baseline"]
        whole_run = startup["live_scan"] / startup["baseline"]
        results = [
            over_floor <= TARGET_FLOOR,
            speedup >= TARGET_SEQUENTIAL,
            over_baseline <= TARGET_STARTUP,
        ]
        log("results:")
        if prowler_seconds is None:
            log("  mutguard vs Prowler: not measured (no prowler, and its recorded figure is for")
            log(f"    {len(REGIONS) * CLUSTERS_PER_REGION} clusters in {len(REGIONS)} regions)")
        else:
            vs_prowler = prowler_seconds / parallel.median
            results.append(vs_prowler >= TARGET_PROWLER)
            how = "timed in this run" if args.prowler else "recorded figure, not timed in this run"
            log(
                f"  mutguard vs Prowler ({how}): {vs_prowler:.1f}x faster "
                f"(target >= {TARGET_PROWLER:g}x)  {verdict(results[-1])}"
            )
        if args.prowler and recorded is not None:
            log(f"    (against its recorded {recorded:g} s: {recorded / parallel.median:.1f}x)")
        log(
            f"  mutguard vs bare boto3 floor: {over_floor:.2f}x "
            f"(target <= {TARGET_FLOOR:g}x)  {verdict(results[0])}"
        )
        log(
            f"    (median of the {args.repeat} rounds' ratios; ratio of the medians "
            f"{parallel.median / floor.median:.2f}x; CPU time "
            f"{parallel.cpu_median / floor.cpu_median:.2f}x)"
        )
        same = f" (on the {seq_fleet.size}-cluster subset)" if subset else ""
        log(
            f"  parallel vs sequential: {speedup:.1f}x faster{same} "
            f"(target >= {TARGET_SEQUENTIAL:g}x)  {verdict(results[1])}"
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
        help="scan only this many regions one call at a time, and compare with a parallel scan "
        "of the same subset (default: every region; the full sequential scan takes ~2 min)",
    )
    parser.add_argument("--repeat", type=int, default=15, help="mutguard and floor scans")
    parser.add_argument("--startup", type=int, default=7, help="runs of each start-up program")
    parser.add_argument(
        "--prowler",
        default=shutil.which("prowler"),
        metavar="PATH",
        help="the prowler command to time in the same run (default: `prowler` on PATH; "
        "without one, its recorded figure is shown)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sequential_regions is None or args.sequential_regions > args.regions:
        args.sequential_regions = args.regions
    return args


def main() -> int:
    args = parse_args()
    if args.serve:
        return serve(REGIONS[: args.regions], args.clusters_per_region)
    try:
        met = run(args)
    except (BenchError, BotoCoreError, ClientError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    log("all targets met" if met else "some targets missed (reported, not enforced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
