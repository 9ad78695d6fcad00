"""No cloud SDK loads before it is needed: a snapshot scan and the CLI start without boto3."""

import subprocess
import sys

PROBE = """
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import mutguard.cli
from mutguard.providers import snapshot
from mutguard.scan import build_report

demo = Path(str(resources.files("mutguard") / "demo"))
report = build_report(snapshot.read(demo), datetime.now(UTC))
assert report.clusters
# Namespace packages (`google`, `google.cloud`) hold no code: some installs create them at start-up
# (a *-nspkg.pth file), so only modules with code of their own count.
loaded = sorted(m for m, module in list(sys.modules.items())
                if m.split(".")[0] in {"boto3", "botocore", "kubernetes", "google", "azure"}
                and getattr(module, "__file__", None) is not None)
print(",".join(loaded))
"""


def test_snapshot_scan_imports_no_cloud_sdk():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


LIVE_START = """
import sys
import mutguard.cli
import mutguard.providers.eks_live
mutguard.cli.build_parser()
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {"pydantic", "rich"})))
"""


def test_live_collector_starts_without_pydantic_or_rich():
    # A serverless run pays for every import before its first AWS call: the report models and
    # the terminal renderer load only after the clusters have been read.
    done = subprocess.run(
        [sys.executable, "-c", LIVE_START], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
