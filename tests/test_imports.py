"""No cloud SDK loads before it is needed: a snapshot scan and the CLI start without boto3."""

import os
import subprocess
import sys

import pytest

from servers.aws_clients import AwsClients
from servers.chat import ChatServer

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


FUNCTION_SETTINGS = """
import sys
from mutguard.functions.payload import parse_payload
from mutguard.functions.runtime import Settings
Settings.from_env({"MUTGUARD_REPORT_STORE": "s3:reports/mutguard", "MUTGUARD_SINKS": "slack",
                   "MUTGUARD_STATE_STORE": "dynamodb:mutguard-state"})
parse_payload({"action": "scan", "targets": [{"provider": "eks", "account": "123456789012"}]})
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {"pydantic", "rich"})))
"""


def test_a_functions_settings_and_payload_load_no_report_model():
    # What a scan event reads before its first cloud call: a report store, sinks and a state
    # store configured must not bring the report models (pydantic) in before the clusters.
    done = subprocess.run(
        [sys.executable, "-c", FUNCTION_SETTINGS], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


HANDLER_IMPORT = """
import importlib
import sys
importlib.import_module(sys.argv[1])
foreign = set(sys.argv[2].split(","))
print(",".join(sorted(m for m, module in list(sys.modules.items())
                      if m.split(".")[0] in foreign
                      and getattr(module, "__file__", None) is not None)))
"""


@pytest.mark.parametrize(
    ("handler", "foreign"),
    [
        ("mutguard.functions.gcp.main", "boto3,botocore,aws_lambda_powertools,azure"),
        (
            "mutguard.functions.azure.function_app",
            "boto3,botocore,aws_lambda_powertools,google,functions_framework",
        ),
    ],
)
def test_a_cloud_function_loads_no_other_cloud_sdk(handler, foreign):
    # Each cloud's package holds its own SDK only: importing another's would fail there.
    done = subprocess.run(
        [sys.executable, "-c", HANDLER_IMPORT, handler, foreign],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == ""


LAMBDA_RUN = """
import sys
from dataclasses import dataclass

from mutguard.functions.aws_lambda import dispatcher, worker


@dataclass
class Context:
    function_name: str = "mutguard"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:mutguard"
    aws_request_id: str = "5f0c4b5e-7d0a-4f6e-9a39-6a4bf5e8a001"


target = {"provider": "eks", "account": "123456789012", "region": "us-east-1"}
assert dispatcher.handler({"targets": [target]}, Context())["dispatched"] == 1
answer = worker.handler({"targets": [target], "include_rbac": False, "publish": True}, Context())
assert answer["report"]["clusters"] and answer["published"][0]["ok"], answer
print("loaded:" + ",".join(sorted(m for m, module in list(sys.modules.items())
                                  if m.split(".")[0] in {"google", "azure", "functions_framework"}
                                  and getattr(module, "__file__", None) is not None)))
"""


def test_the_aws_lambda_handlers_run_without_other_clouds_sdks(cloud: AwsClients):
    cloud.fakes.create_cluster(cloud.fakes.session(), "us-east-1", "web", version="1.34")
    with ChatServer() as chat:
        env = {
            **os.environ,  # the `aws` environment: moto and the EKS gap server
            "MUTGUARD_QUEUE_URL": cloud.create_queue("mutguard-scan"),
            "MUTGUARD_ROLE_ARN": "arn:aws:iam::{account}:role/mutguard-reader",
            "MUTGUARD_SINKS": "slack",
            "MUTGUARD_SLACK_WEBHOOK_URL": chat.url + "/services/T0/B0/importsSecret0123",
        }
        done = subprocess.run(
            [sys.executable, "-c", LAMBDA_RUN], env=env, capture_output=True, text=True
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "loaded:"  # before it: the functions' JSON logs


def test_the_publish_package_loads_only_what_is_asked_for():
    # The AWS dispatcher needs publish.retry alone (and the clock it reads, stdlib only): the
    # package must not load the report models.
    probe = (
        "import sys, mutguard.publish, mutguard.publish.retry\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('mutguard'))))\n"
        "from mutguard.publish import notify, Redactor\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "mutguard,mutguard.clock,mutguard.publish,mutguard.publish.retry"
