"""Benchmark: what a cold start of each cloud function costs, and the Lambda package's size.

- Each handler module imported by a fresh interpreter (what a cold start pays before the first
  event reaches mutguard), against the floor of its cloud: a fresh interpreter importing the
  cloud's SDK client module and pydantic's BaseModel (pydantic's package alone loads lazily),
  plus the host library the platform has imported before it loads the handler (Cloud Functions
  runs the handler inside functions-framework; the Azure Python worker imports azure.functions;
  the Lambda runtime client loads no third-party module). Target <= 1.15x. Under each handler,
  the imports it adds over its floor that cost most (from `python -X importtime`).
- dist/mutguard-aws-lambda.zip unzipped, without what the Lambda runtime ships (boto3, botocore,
  s3transfer, jmespath; the package leaves them out): target < 15 MB. Built with
  release/package.py when dist/ has none.

Imports are timed with this venv's interpreter and its cached bytecode, median of interleaved
runs after one warm-up each. Lambda cannot write bytecode next to the function's code, so a real
cold start there also compiles what it imports. Targets are reported, not enforced: the exit
status is 0 unless the benchmark itself could not run.
Run with `make bench` or `.venv/bin/python bench/cold_start.py` (--help for options).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_ZIP = ROOT / "dist" / "mutguard-aws-lambda.zip"
LAMBDA_RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath")

TARGET_RATIO = 1.15  # a handler's import may take at most this many times its cloud's floor
TARGET_LAMBDA_BYTES = 15_000_000


@dataclass(frozen=True)
class Floor:
    label: str
    code: str


# pydantic's package imports its parts lazily: a handler with a payload model pays for BaseModel.
PYDANTIC = "from pydantic import BaseModel"
FLOORS = {
    "aws": Floor("boto3 + pydantic", f"import boto3\n{PYDANTIC}"),
    "gcp": Floor(
        "container_v1 + pydantic + functions_framework",
        f"import google.cloud.container_v1, functions_framework\n{PYDANTIC}",
    ),
    "azure": Floor(
        "containerservice + pydantic + azure.functions",
        f"import azure.mgmt.containerservice, azure.functions\n{PYDANTIC}",
    ),
}
HANDLERS = {
    "mutguard.functions.aws_lambda.worker": "aws",
    "mutguard.functions.aws_lambda.dispatcher": "aws",
    "mutguard.functions.gcp.main": "gcp",
    "mutguard.functions.azure.function_app": "azure",
}


class BenchError(Exception):
    """The benchmark could not run."""


@dataclass
class ImportNode:
    """One line of `-X importtime`: a module and what importing it cost, its imports included."""

    module: str
    cumulative_us: int
    children: list[ImportNode] = field(default_factory=list)


def log(message: str = "") -> None:
    print(message, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(code: str, workdir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    # A temporary working directory: `python -c` puts it first on sys.path, and the repository
    # root holds directories (functions/, providers/) that would shadow nothing but blur the run.
    done = subprocess.run(
        [sys.executable, *options, "-c", code],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise BenchError(f"`python -c {code!r}` failed:\n{done.stderr[-2000:]}")
    return done


def measure(programs: dict[str, str], workdir: Path, repeat: int) -> dict[str, float]:
    """Median wall time of each program in a fresh interpreter, runs interleaved."""
    times: dict[str, list[float]] = {name: [] for name in programs}
    for code in programs.values():  # warm the OS file cache and write any missing .pyc files
        run(code, workdir)
    for _ in range(repeat):
        for name, code in programs.items():
            started = time.perf_counter()
            run(code, workdir)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


_IMPORTTIME = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)$")


def import_tree(code: str, workdir: Path) -> list[ImportNode]:
    """The imports a program makes, as a tree (`-X importtime` prints each after its children,
    indented two spaces per level)."""
    pending: dict[int, list[ImportNode]] = {}
    for line in run(code, workdir, "-X", "importtime").stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match is None:
            continue
        level = len(match[2]) // 2
        node = ImportNode(match[3], int(match[1]), pending.pop(level + 1, []))
        pending.setdefault(level, []).append(node)
    return pending.get(0, [])


def modules_of(nodes: list[ImportNode]) -> set[str]:
    return {n.module for n in nodes} | {m for n in nodes for m in modules_of(n.children)}


def added_imports(handler: list[ImportNode], floor: set[str]) -> list[ImportNode]:
    """The outermost imports of the handler that its floor does not make."""
    added = []
    for node in handler:
        if node.module in floor:
            added += added_imports(node.children, floor)
        else:
            added.append(node)
    return added


def heaviest_additions(handler: str, floor: Floor, workdir: Path, count: int = 6) -> list[str]:
    floor_modules = modules_of(import_tree(floor.code, workdir))
    # The handler module itself is never in the floor: look at what it imports.
    tree = import_tree(f"import {handler}", workdir)
    own = {handler, *(handler.rsplit(".", n)[0] for n in range(1, handler.count(".") + 1))}
    added = added_imports(tree, floor_modules | own)
    added.sort(key=lambda n: n.cumulative_us, reverse=True)
    return [f"{n.module} {n.cumulative_us / 1000:.0f} ms" for n in added[:count]]


def lambda_zip() -> Path:
    if not LAMBDA_ZIP.exists():
        log(f"{LAMBDA_ZIP.relative_to(ROOT)} is missing: building it ...")
        done = subprocess.run(
            [sys.executable, str(ROOT / "release" / "package.py"), "aws"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise BenchError(f"release/package.py failed:\n{done.stderr[-2000:]}")
    return LAMBDA_ZIP


def lambda_sizes(path: Path) -> Counter[str]:
    """Unzipped bytes per top-level name, without the runtime's SDK."""
    sizes: Counter[str] = Counter()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            top = info.filename.split("/")[0]
            if top not in LAMBDA_RUNTIME_SDK:
                sizes["(metadata)" if top.endswith(".dist-info") else top] += info.file_size
    return sizes


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="timed runs of each program")
    args = parser.parse_args()
    log("mutguard cloud function cold start benchmark")
    try:
        with tempfile.TemporaryDirectory(prefix="mutguard-bench-") as tmp:
            workdir = Path(tmp)
            programs = {"interpreter": "pass"}
            programs |= {f"floor:{cloud}": floor.code for cloud, floor in FLOORS.items()}
            programs |= {handler: f"import {handler}" for handler in HANDLERS}
            times = measure(programs, workdir, args.repeat)
            log(
                f"median of {args.repeat} fresh interpreters each "
                f"(`python -c pass` alone: {times['interpreter']:.3f} s)"
            )
            log()
            width = max(map(len, HANDLERS))
            floor_width = max(len(f.label) for f in FLOORS.values())
            log(
                f"  {'handler module':<{width}}  {'import':>7}  {'floor':<{floor_width}}  "
                f"{'import':>7}  {'ratio':>6}  target"
            )
            results = []
            additions: dict[str, list[str]] = {}
            for handler, cloud in HANDLERS.items():
                floor = FLOORS[cloud]
                ratio = times[handler] / times[f"floor:{cloud}"]
                results.append(ok := ratio <= TARGET_RATIO)
                log(
                    f"  {handler:<{width}}  {times[handler]:6.3f}s  {floor.label:<{floor_width}}  "
                    f"{times[f'floor:{cloud}']:6.3f}s  {ratio:5.2f}x  "
                    f"<= {TARGET_RATIO:g}x  {verdict(ok)}"
                )
                additions[handler] = heaviest_additions(handler, floor, workdir)
            log()
            log("  imports beyond the floor, heaviest first (one `-X importtime` run each):")
            for handler, heaviest in additions.items():
                log(f"    {handler}: {', '.join(heaviest)}")
            log()

            path = lambda_zip()
            sizes = lambda_sizes(path)
            unzipped = sum(sizes.values())
            results.append(ok := unzipped < TARGET_LAMBDA_BYTES)
            log(
                f"  {path.relative_to(ROOT)} unzipped, without {', '.join(LAMBDA_RUNTIME_SDK)}: "
                f"{megabytes(unzipped)} (zipped {megabytes(path.stat().st_size)}; target < "
                f"{megabytes(TARGET_LAMBDA_BYTES)})  {verdict(ok)}"
            )
            largest = ", ".join(f"{name} {megabytes(size)}" for name, size in sizes.most_common(6))
            log(f"    largest: {largest}")
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    log()
    log("all targets met" if all(results) else "some targets missed (reported, not enforced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
