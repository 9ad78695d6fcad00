"""No cloud SDK loads before it is needed: a snapshot scan and the CLI start without boto3."""

import json
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


WORKER_FIRST_CALL = """
import json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

first_call = {}


class Sts(BaseHTTPRequestHandler):
    # Notes what was loaded when the first AWS request arrived (the worker's thread waits for
    # the answer meanwhile), then refuses it.
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        first_call.setdefault("modules", sorted(sys.modules))
        first_call.setdefault("action", body.partition("Action=")[2].partition("&")[0])
        error = b"<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>"
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(error)))
        self.end_headers()
        self.wfile.write(error)

    def log_message(self, *args):
        pass


sts = ThreadingHTTPServer(("127.0.0.1", 0), Sts)
threading.Thread(target=sts.serve_forever, daemon=True).start()
os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{sts.server_address[1]}"

from mutguard.functions.aws_lambda import worker

message = {"action": "scan", "publish": True,
           "targets": [{"provider": "eks", "account": "123456789012", "region": "eu-west-1"}]}
record = {"messageId": "m-1", "body": json.dumps(message), "eventSource": "aws:sqs"}
context = SimpleNamespace(function_name="mutguard-worker", memory_limit_in_mb=1024,
                          invoked_function_arn="arn:aws:lambda:us-east-1:1:function:w",
                          aws_request_id="r-1")
answer = worker.handler({"Records": [record]}, context)
heavy = tuple(sys.argv[1].split(","))
print(json.dumps({
    "answer": answer,
    "action": first_call.get("action"),
    "heavy": [m for m in first_call.get("modules", [])
              if m in heavy or m.startswith(tuple(name + "." for name in heavy))],
}))
"""

# What a scan needs only once the clusters are read: the report models and checks (pydantic),
# the scan's result, the renderers, publishing and its configuration, Powertools' parser models,
# and the in-cluster reads with their EKS tokens (a cluster is described first).
AFTER_THE_FIRST_CALL = (
    "pydantic",
    "rich",
    "yaml",
    "mutguard.models",
    "mutguard.scan",
    "mutguard.checks",
    "mutguard.render",
    "mutguard.publish",
    "mutguard.functions.result",
    "mutguard.providers.in_cluster",
    "mutguard.providers.eks_token",
    "aws_lambda_powertools.utilities.parser",
)


def test_the_aws_worker_makes_its_first_call_before_loading_the_report(tmp_path):
    # The cold start a queued scan pays (bench/cold_start.py): the SQS batch of one dispatcher
    # message to the sts:AssumeRole of its target.
    (tmp_path / "aws-config").write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MUTGUARD_"))},
        "AWS_ACCESS_KEY_ID": "imports",
        "AWS_SECRET_ACCESS_KEY": "imports",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-config"),
        "MUTGUARD_ROLE_ARN": "arn:aws:iam::{account}:role/mutguard-reader",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER_FIRST_CALL, ",".join(AFTER_THE_FIRST_CALL)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(done.stdout.splitlines()[-1])
    assert probe["answer"] == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert probe["action"] == "AssumeRole"
    assert probe["heavy"] == []


WORKER_INIT = """
import gc, sys
passes = []  # at each collection pass: whether the init's libraries had begun to load


def note(phase, info):
    if phase == "start":
        passes.append("aws_lambda_powertools" in sys.modules or "boto3" in sys.modules)


gc.callbacks.append(note)
from mutguard.functions.aws_lambda import worker
gc.callbacks.remove(note)
ran_off = passes.count(True) == 0
import boto3
tracked = {id(o) for o in gc.get_objects()}
print(ran_off, gc.isenabled(), id(boto3.Session.client) in tracked, id(worker.handler) in tracked)
"""


def test_the_aws_worker_inits_with_the_collector_off_and_freezes_what_it_loaded():
    # The worker's import loads Powertools, its own modules, the EKS collector and boto3 with no
    # garbage collection pass, and ends with the collector on again and all it loaded (its SDK
    # and its own functions included) frozen: no later pass walks it, and those passes would
    # come before a cold start's first AWS call.
    done = subprocess.run(
        [sys.executable, "-c", WORKER_INIT], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "True", "False", "False"]
