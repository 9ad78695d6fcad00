"""Ctrl-C during a live scan: mutguard stops sending requests, says so in one line and exits 130,
leaving no report behind; a real `python -m mutguard.cli` against the local AWS fakes."""

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mutguard.cli import EXIT_INTERRUPTED, main
from mutguard.providers.eks_live import AwsOptions, EksCollector

from servers.aws import AwsFakes

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1")
CLUSTERS_PER_REGION = 10
CONCURRENCY = 4
# Each cluster takes three EKS requests, so the whole scan would take about
# 50 * 3 * LATENCY / CONCURRENCY = 7.5 s: far longer than stopping may take.
LATENCY = 0.2
STARTED = 4  # DescribeCluster requests seen before the signal: the scan is well under way
SIGNAL_HANDLED = 0.1  # seconds for the scan's main thread to see the signal and stop its pool


@pytest.fixture
def slow_fleet(aws: AwsFakes) -> AwsFakes:
    session = aws.session()
    for region in REGIONS:
        for number in range(CLUSTERS_PER_REGION):
            aws.create_cluster(session, region, f"c{number}", version="1.34")
    aws.eks_gap.latency_seconds = LATENCY
    return aws


def _signal_a_running_scan(fleet: AwsFakes, report: Path, signum: int):
    """Start a scan, send `signum` once it is reading clusters; (process, seconds to exit, the
    moment the signal was sent)."""
    scan = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mutguard.cli",
            "scan",
            "--provider",
            "aws",
            "--skip-in-cluster",
            "--regions",
            ",".join(REGIONS),
            "--concurrency",
            str(CONCURRENCY),
            "--format",
            "json",
            "-o",
            str(report),
        ],
        env={**os.environ, **fleet.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while fleet.eks_gap.requests_seen("GET", "/clusters/[^/]+") < STARTED:
            assert scan.poll() is None and time.monotonic() < deadline, "the scan never started"
            time.sleep(0.01)
        scan.send_signal(signum)
        signalled = time.monotonic()
        scan.wait(timeout=10)
        return scan, time.monotonic() - signalled, signalled
    finally:
        scan.kill()


def test_ctrl_c_stops_the_scan_at_once_and_writes_nothing(slow_fleet, tmp_path):
    report = tmp_path / "report.json"
    scan, took, signalled = _signal_a_running_scan(slow_fleet, report, signal.SIGINT)
    assert (scan.returncode, scan.stderr.read(), scan.stdout.read()) == (
        EXIT_INTERRUPTED,
        "mutguard: interrupted; nothing was reported or published\n",
        "",
    )
    assert took < 2, f"exited {took:.1f} s after Ctrl-C"
    assert not report.exists()
    # No request comes in once the signal has had time to be handled, not even the next call
    # of a cluster task that was under way (each cluster takes three EKS calls).
    time.sleep(2 * LATENCY)
    assert slow_fleet.eks_gap.requests_arrived_after(signalled + SIGNAL_HANDLED) == 0


def test_a_scan_given_up_sends_not_even_the_next_call_of_a_task_under_way(slow_fleet):
    # A caller that stops reading (a function's time running out, a library user) gives the
    # scan up while the process lives on: the workers' tasks under way must not go on to their
    # next EKS call (each cluster takes three).
    options = AwsOptions(regions=REGIONS, in_cluster=False, concurrency=CONCURRENCY)
    items = EksCollector(options).collect()
    next(items)  # the pool is now busy reading other clusters
    items.close()
    given_up = time.monotonic()
    time.sleep(3 * LATENCY)  # what was in flight comes in; nothing after it may
    assert slow_fleet.eks_gap.requests_arrived_after(given_up + LATENCY) == 0


def test_sigterm_ends_the_scan_at_once_and_writes_nothing(slow_fleet, tmp_path):
    """mutguard leaves SIGTERM to its default action: the process ends where it stands."""
    report = tmp_path / "report.json"
    scan, took, _ = _signal_a_running_scan(slow_fleet, report, signal.SIGTERM)
    assert (scan.returncode, scan.stderr.read(), scan.stdout.read()) == (-signal.SIGTERM, "", "")
    assert took < 2
    assert not report.exists()


def _file_size_limit(size: int):
    def apply() -> None:
        # Past the limit a write fails with EFBIG instead of killing the process (SIGXFSZ).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


def test_a_report_cut_short_leaves_the_last_whole_one(tmp_path):
    # A write that stops halfway (a full disk, a size limit, Ctrl-C) must not leave a partial
    # report under the real name, where it would be read as a whole one. Snapshot documents are
    # written the same way (mutguard.files.write_atomically).
    report = tmp_path / "report.json"
    report.write_text('{"whole": true}\n')
    done = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", "demo", "--format", "json", "-o", str(report)],
        preexec_fn=_file_size_limit(4096),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "File too large" in done.stderr
    assert report.read_text() == '{"whole": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_report_to_a_fifo_or_through_a_symlink_leaves_both_what_they_were(tmp_path):
    # `-o /dev/null` or `-o /dev/stdout` must write to the device, never rename a file over it
    # (as root that would replace /dev/null for the whole machine); a FIFO stands in for them.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["demo", "--format", "json", "--as-of", "2026-03-01", "-o", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(received[0])["clusters"]
    target, link = tmp_path / "report.json", tmp_path / "latest.json"
    target.write_text("{}")
    link.symlink_to(target)
    assert main(["demo", "--format", "json", "--as-of", "2026-03-01", "-o", str(link)]) == 0
    assert link.is_symlink() and json.loads(target.read_text())["clusters"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "pipe", "report.json"]
