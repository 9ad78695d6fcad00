"""A provider is one plug-in, registered once: a distribution that declares one in the
`mutguard.providers` entry-point group is scanned from the command line (live and from a
snapshot) and from a function invoke, with no mutguard file naming it.

The throwaway provider (tests/plugins/throwaway_provider/) is installed the way pip would leave
it: a dist-info folder with its entry_points.txt on the path of a fresh interpreter.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mutguard.cli import EXIT_OK, EXIT_USAGE, main
from mutguard.errors import InputError
from mutguard.providers import PROVIDERS, live_source
from mutguard.registry import Registry
from mutguard.sources import PLUGIN_GROUP, Provider

PLUGINS = Path(__file__).resolve().parent / "plugins"
LAB_SNAPSHOT = PLUGINS / "throwaway_provider" / "lab"
LAB_CHECK = "throwaway.endpoint.public"
LIVE_SOURCE = (
    "import sys; from mutguard.providers import live_source; print(live_source(*sys.argv[1:]))"
)

INVOKE = """
import json, sys
from mutguard.functions.payload import PayloadError, parse_payload
from mutguard.functions.runtime import Settings, result_body, run_scan

try:
    payload = parse_payload(json.loads(sys.argv[1]))
except PayloadError as exc:
    print(json.dumps(exc.body()))
else:
    print(json.dumps(result_body(run_scan(payload, Settings()))))
"""


@pytest.fixture
def installed(tmp_path) -> dict[str, str]:
    """The environment of an interpreter where the throwaway provider's distribution is
    installed."""
    site = tmp_path / "site"
    info = site / "throwaway_provider-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: throwaway-provider\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[mutguard.providers]\nthrowaway = throwaway_provider:PLUGIN\n"
        "[mutguard.formats]\nlab-lines = throwaway_provider.lab_format\n"
    )
    path = [str(site), str(PLUGINS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}


def mutguard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutguard.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lab_cluster(report: dict) -> dict:
    (cluster,) = report["clusters"]
    assert cluster["provider"] == "throwaway"
    failed = [f["check_id"] for f in cluster["findings"] if f["status"] == "FAIL"]
    assert failed == [LAB_CHECK]  # its own check ran, and no built-in provider's
    assert cluster["mut"] == 2  # the FAIL's edge opened the network barrier
    return cluster


def test_a_live_scan_through_the_command_line_takes_the_plugins_options(installed):
    done = mutguard(
        installed, "scan", "--provider", "throwaway", "--lab-cluster", "bench", "--format", "json"
    )
    assert done.returncode == EXIT_OK, done.stderr
    cluster = lab_cluster(json.loads(done.stdout))
    assert (cluster["name"], cluster["account"]) == ("bench", "lab-1")


def test_a_snapshot_of_its_cluster_json_is_detected_as_the_plugins(installed):
    done = mutguard(installed, "scan", "--snapshot", str(LAB_SNAPSHOT), "--format", "json")
    assert done.returncode == EXIT_OK, done.stderr
    assert lab_cluster(json.loads(done.stdout))["name"] == "lab"
    table = mutguard(installed, "scan", "--snapshot", str(LAB_SNAPSHOT))
    assert table.returncode == EXIT_OK and LAB_CHECK in table.stdout, table.stderr


def test_every_format_names_the_plugins_clusters_by_its_own_labels(installed):
    from mutguard.render import FORMATS

    for fmt in FORMATS.names():
        done = mutguard(installed, "scan", "--snapshot", str(LAB_SNAPSHOT), "--format", fmt)
        assert done.returncode == EXIT_OK, f"{fmt}: {done.stderr}"
        assert "lab" in done.stdout, fmt
    sarif = mutguard(installed, "scan", "--snapshot", str(LAB_SNAPSHOT), "--format", "sarif")
    assert "Throwaway: " in sarif.stdout  # the rule's remediation, titled by the plug-in
    ocsf = json.loads(
        mutguard(installed, "scan", "--snapshot", str(LAB_SNAPSHOT), "--format", "ocsf").stdout
    )
    assert {r["type"] for e in ocsf for r in e["resources"] if "type" in r} == {"Throwaway cluster"}
    assert not any("cloud" in event for event in ocsf)  # its labels name no cloud
    hint = subprocess.run(
        [sys.executable, "-c", LIVE_SOURCE, "throwaway", "lab"],
        env=installed,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert hint.stdout == "--provider throwaway\n", hint.stderr  # explain's hint reads it live


def test_explains_hint_reads_each_built_in_provider_live():
    assert live_source(Provider.EKS, "prod") == "--provider aws"
    assert live_source(Provider.AKS, "prod") == "--provider azure"
    assert live_source(Provider.KUBERNETES, "ctx") == "--kubeconfig PATH --context ctx"


def test_a_format_from_another_distribution_is_chosen_by_its_name(installed):
    """Formats, sinks, state stores, secret sources and report stores are registries of the
    same kind as providers, each with its entry-point group."""
    done = mutguard(installed, "scan", "--snapshot", str(LAB_SNAPSHOT), "--format", "lab-lines")
    assert (done.returncode, done.stdout) == (EXIT_OK, "lab 2\n"), done.stderr
    unknown = mutguard(installed, "scan", "--snapshot", str(LAB_SNAPSHOT), "--format", "nope")
    assert unknown.returncode == EXIT_USAGE
    assert "unknown format 'nope': choose one of table, json" in unknown.stderr
    assert "lab-lines" in unknown.stderr


def test_the_checks_listing_includes_the_plugins_checks(installed):
    done = mutguard(installed, "checks", "--format", "json", "--provider", "throwaway")
    assert done.returncode == EXIT_OK, done.stderr
    assert [c["id"] for c in json.loads(done.stdout)] == [LAB_CHECK]


def invoke(env: dict[str, str], payload: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", INVOKE, json.dumps(payload)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_function_invoke_scans_the_plugins_targets(installed):
    target = {"provider": "throwaway", "account": "lab-7", "cluster": "fn"}
    body = invoke(installed, {"targets": [target]})
    assert body["failed_targets"] == []
    cluster = lab_cluster(body["report"])
    assert (cluster["name"], cluster["account"]) == ("fn", "lab-7")


@pytest.mark.parametrize(
    ("target", "field", "message"),
    [
        (
            {"provider": "ecs", "account": "lab-7"},
            "targets[0].provider",
            "Input should be 'eks', 'gke', 'aks' or 'throwaway'",
        ),
        (
            {"provider": "throwaway", "account": "123456789012"},
            "targets[0].account",
            "'123456789012' is not a lab id (lab-N)",
        ),
    ],
)
def test_the_payload_validates_against_the_plugins_own_format(installed, target, field, message):
    error = invoke(installed, {"targets": [target]})["error"]
    assert (error["field"], error["message"]) == (field, message)


def test_the_registry_and_the_provider_type_read_the_same_entry_point_group():
    assert PROVIDERS.group == PLUGIN_GROUP


def test_without_the_distribution_the_provider_is_unknown(capsys):
    with pytest.raises(SystemExit) as usage:
        main(["scan", "--provider", "throwaway"])
    assert usage.value.code == EXIT_USAGE
    assert "invalid choice: 'throwaway'" in capsys.readouterr().err


def test_a_registry_loads_an_entry_only_when_asked_for_and_names_the_choices():
    registry: Registry[object] = Registry("sink")
    registry.add("slack", "tests.plugins.absent:SINK")
    registry.add("sqs", "builtins:tuple")
    with pytest.raises(InputError, match="unknown sink 'teams': choose one of slack, sqs"):
        registry.get("teams")
    assert registry.get("sqs") is tuple and "slack" in registry
    with pytest.raises(InputError, match="sink plug-in 'slack' cannot be loaded"):  # only now
        registry.get("slack")
