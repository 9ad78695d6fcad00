"""The command line: the demo, every output format, CI gates and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from mutguard.cli import EXIT_GATE, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main

from builders import describe_cluster

MUTGUARD = [sys.executable, "-m", "mutguard.cli"]


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def demo_report():
    done = subprocess.run(
        [*MUTGUARD, "demo", "--format", "json"], capture_output=True, text=True, check=True
    )
    return {c["name"]: c for c in json.loads(done.stdout)["clusters"]}


def fixes(cluster):
    return [(f["check_id"], f["mut_gain"]) for f in cluster["findings"] if f.get("mut_gain")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("payments-legacy", (0, 1, 1)),
        ("shop-staging", (1, 2, 1)),
        ("shop-prod", (2, 2, 1)),
        ("platform-core", (3, 2, 3)),
    ],
)
def test_demo_eks_mut_values(demo_report, name, expected):
    cluster = demo_report[name]
    assert (cluster["mut"], cluster["mut_workload"], cluster["mut_credential"]) == expected


def test_demo_top_fixes_by_mut_gain(demo_report):
    assert fixes(demo_report["payments-legacy"]) == [
        ("eks.auth.anonymous", 2),
        ("eks.endpoint.public_unrestricted", 1),
        ("rbac.anonymous_admin", 1),
    ]
    assert fixes(demo_report["shop-staging"])[0] == ("eks.endpoint.public_unrestricted", 1)
    assert ("eks.access.admin_policy", 1) in fixes(demo_report["shop-prod"])
    assert fixes(demo_report["platform-core"]) == []


def test_demo_table_shows_mut_path_and_fixes(capsys):
    code, out, _ = run(capsys, "demo")
    assert code == EXIT_OK
    assert "MUT 0 from the internet" in out
    assert "ClusterRoleBinding debug-anonymous-admin (ClusterRole cluster-admin) lets" in out
    assert "top fixes by MUT gain" in out
    assert out.index("payments-legacy") < out.index("platform-core")


def test_markdown_and_output_file(capsys, tmp_path):
    target = tmp_path / "report.md"
    code, out, _ = run(capsys, "demo", "--format", "markdown", "-o", str(target))
    assert code == EXIT_OK and out == ""
    text = target.read_text()
    assert "## eks `payments-legacy`" in text and "| +2 | high | `eks.auth.anonymous`" in text


def test_json_report_matches_the_committed_schema(capsys):
    _, out, _ = run(capsys, "demo", "--format", "json")
    schema = json.loads((Path(__file__).parents[1] / "schemas" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(out))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fail-on", "critical"], EXIT_GATE),
        (["--max-mut", "0"], EXIT_GATE),
        (["--max-mut", "-1"], EXIT_OK),
    ],
)
def test_gates(capsys, args, expected):
    assert run(capsys, "demo", "--format", "json", *args)[0] == expected


def test_gates_pass_on_a_hardened_cluster(capsys, tmp_path):
    cluster = describe_cluster(
        public=False,
        private=True,
        secrets_key="arn:aws:kms:eu-west-1:1:key/k",
        log_types=("audit", "authenticator"),
        version="1.35",
    )
    (tmp_path / "cluster.json").write_text(json.dumps(cluster))
    # EKS 1.35 is in extended support until 2028-03-27 (mutguard/data/eks_versions.json).
    gates = ("--fail-on", "high", "--max-mut", "1", "--as-of", "2026-12-04")
    code, _, _ = run(capsys, "scan", "--snapshot", str(tmp_path), *gates)
    assert code == EXIT_OK


def test_partial_errors_exit_3_and_usage_errors_exit_2(capsys, tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "cluster.json").write_text(json.dumps(describe_cluster()))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cluster.json").write_text("{")
    code, out, _ = run(capsys, "scan", "--snapshot", str(tmp_path), "--format", "json")
    assert code == EXIT_PARTIAL
    assert len(json.loads(out)["clusters"]) == 1
    code, _, err = run(capsys, "scan", "--snapshot", str(tmp_path / "missing"))
    assert code == EXIT_USAGE and f"{tmp_path / 'missing'}: no such file or directory" in err
    code, _, err = run(capsys, "scan", "--snapshot", str(tmp_path / "good" / "cluster.json"))
    assert code == EXIT_USAGE and "pass the folder that holds cluster.json" in err
    with pytest.raises(SystemExit) as usage:
        main(["scan"])
    assert usage.value.code == EXIT_USAGE


def test_checks_listing(capsys):
    code, out, _ = run(capsys, "checks", "--format", "json")
    checks = json.loads(out)
    assert code == EXIT_OK
    ids = [c["id"] for c in checks]
    assert "eks.endpoint.public_unrestricted" in ids and ids == sorted(ids)
    code, out, _ = run(capsys, "checks", "--provider", "eks")
    assert code == EXIT_OK and "rbac.anonymous_admin" in out


@pytest.mark.parametrize(
    ("scan_name", "own_name"), [("aws", "eks"), ("gcp", "gke"), ("azure", "aks")]
)
def test_checks_takes_the_provider_names_scan_takes(capsys, scan_name, own_name):
    _, by_scan_name, _ = run(capsys, "checks", "--format", "json", "--provider", scan_name)
    _, by_own_name, _ = run(capsys, "checks", "--format", "json", "--provider", own_name)
    ids = [c["id"] for c in json.loads(by_scan_name)]
    assert ids == [c["id"] for c in json.loads(by_own_name)]
    assert any(i.startswith(f"{own_name}.") for i in ids)
    assert not any(i.split(".")[0] in {"eks", "gke", "aks"} - {own_name} for i in ids)


def test_console_script_version():
    done = subprocess.run([*MUTGUARD, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("mutguard ")


def test_explain_shows_each_step_and_its_cost(capsys):
    code, out, _ = run(capsys, "explain", "payments-legacy", "--demo")
    assert code == EXIT_OK
    assert out.startswith("payments-legacy (eks, eu-west-1, 111111111111)")
    assert "From the internet: MUT 0" in out
    assert (
        "1. network: API endpoint public to 0.0.0.0/0\n     costs 0: nothing stops this step" in out
    )
    assert "+2 (internet, workload) eks.auth.anonymous" in out
    code, _, err = run(capsys, "explain", "nope", "--demo")
    assert code == EXIT_USAGE and "payments-legacy" in err
