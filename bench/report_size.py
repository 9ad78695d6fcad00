"""Report size and RBAC analysis memory, measured in one run.

- The demo: `--format json` bytes of the bundled example clusters' report, minified, per cluster
  (the whole report, check catalogue included, divided by its clusters) and per added cluster
  (its own section of the report: what each further cluster adds to a fleet's report, whose
  check catalogue and platform reasons are shared).
- A synthetic cluster of 200k bindings (`rbac_scale.synthetic_cluster`), analysed in a fresh
  interpreter exactly as a scan does (`scan.evaluate`, which lets the raw documents go once they
  are parsed): the report's bytes (minified), and the peak RSS of the whole process divided by
  the bindings, the input documents included (they alone are about 1.5 KB per binding).

Goals: at most 8 KB per typical cluster, at most 15 MB for the 200k-binding report, at most
2 KB of memory per binding. Printed as ratios against the goal (at most 1.00 meets it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

BINDINGS = 200_000
GOAL_BYTES_PER_CLUSTER = 8 * 1024
GOAL_LARGE_REPORT_BYTES = 15 * 1024 * 1024
GOAL_BYTES_PER_BINDING = 2 * 1024
DEMO_AS_OF = datetime(2026, 12, 1, tzinfo=UTC)

_MEASURE = """
import json, resource, sys, time
from datetime import UTC, datetime
from importlib import resources
sys.path.insert(0, {bench!r})
from rbac_scale import synthetic_cluster
from mutguard.models import Report
from mutguard.scan import evaluate
from mutguard.sources import ClusterSource, Provider

def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

documents = synthetic_cluster({bindings})
input_kib = rss_kib()
source = ClusterSource(Provider.EKS, "scale", documents=documents)
del documents
started = time.perf_counter()
cluster = evaluate(source, datetime.now(UTC))
elapsed = time.perf_counter() - started
peak_kib = rss_kib()
assert cluster.mut is not None, cluster.errors
report = Report(generated_at=datetime.now(UTC), clusters=[cluster])
print(json.dumps({{"seconds": elapsed, "input_kib": input_kib, "peak_kib": peak_kib,
                  "findings": len(cluster.findings),
                  "report_bytes": len(report.to_json(indent=None).encode())}}))
"""


def demo_sizes() -> tuple[int, float, float]:
    """The demo report's cluster count, bytes per cluster and bytes per added cluster."""
    from mutguard.providers import snapshot
    from mutguard.scan import build_report

    report = build_report(
        snapshot.read(Path(str(resources.files("mutguard") / "demo"))), DEMO_AS_OF
    )
    written = report.to_json(indent=None)
    whole = len(written.encode())
    sections = sum(
        len(json.dumps(cluster, ensure_ascii=False, separators=(",", ":")).encode())
        for cluster in json.loads(written)["clusters"]
    )
    clusters = len(report.clusters)
    return clusters, whole / clusters, sections / clusters


def large_case(bindings: int = BINDINGS) -> dict:
    code = _MEASURE.format(bench=str(Path(__file__).parent), bindings=bindings)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"analysis of {bindings} bindings failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    print("mutguard report size and RBAC analysis memory")
    clusters, per_cluster, per_added = demo_sizes()
    print(
        f"  demo: {clusters} clusters, {per_cluster:,.0f} bytes per cluster "
        f"({per_added:,.0f} per added cluster, catalogue shared)"
    )
    large = large_case()
    peak_per_binding = large["peak_kib"] * 1024 / BINDINGS
    print(
        f"  {BINDINGS:,} bindings: {large['seconds']:.1f} s, {large['findings']:,} findings, "
        f"report {large['report_bytes'] / 2**20:.1f} MiB, peak RSS {large['peak_kib'] / 1024:.0f}"
        f" MiB (of which RSS once the input documents were built: "
        f"{large['input_kib'] / 1024:.0f} MiB)"
    )
    checks = [
        (f"demo bytes per cluster {per_cluster:,.0f}", per_cluster / GOAL_BYTES_PER_CLUSTER),
        (f"demo bytes per added cluster {per_added:,.0f}", per_added / GOAL_BYTES_PER_CLUSTER),
        (
            f"200k-binding report {large['report_bytes'] / 2**20:.1f} MiB",
            large["report_bytes"] / GOAL_LARGE_REPORT_BYTES,
        ),
        (
            f"peak RSS {peak_per_binding:,.0f} bytes per binding",
            peak_per_binding / GOAL_BYTES_PER_BINDING,
        ),
    ]
    goals = ("8 KB", "8 KB", "15 MiB", "2 KiB")
    print("results (measured / goal):")
    for (text, ratio), goal in zip(checks, goals, strict=True):
        print(f"  {text}: {ratio:.2f} x the {goal} goal  {'PASS' if ratio <= 1 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
