"""SARIF output: valid SARIF 2.1.0 that GitHub code scanning accepts, with locations and
fingerprints that stay put from one scan to the next."""

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest

from mutguard.checks import catalogue
from mutguard.cli import EXIT_OK, main
from mutguard.providers import snapshot
from mutguard.render import render
from mutguard.scan import build_report
from mutguard.sources import Provider

from builders import FIXTURES

REPO = Path(__file__).parents[1]
# `make test` installs it; SARIF_MULTITOOL points at another install.
MULTITOOL = Path(
    os.environ.get("SARIF_MULTITOOL", REPO / ".tools" / "node_modules" / ".bin" / "sarif-multitool")
)
AS_OF = "2026-06-01"
# RFC 3986 relative-ref with a path only: unreserved, sub-delims, ":", "@", "/" and %XX escapes.
RELATIVE_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})+")
# (cluster, check, resource) of one demo finding.
ANONYMOUS_ADMIN = (
    "arn:aws:eks:eu-west-1:111111111111:cluster/payments-legacy",
    "rbac.anonymous_admin",
    "ClusterRoleBinding debug-anonymous-admin",
)


def demo_sarif(tmp_path: Path, as_of: str = AS_OF) -> dict:
    target = tmp_path / f"demo-{as_of}.sarif"
    assert main(["demo", "--format", "sarif", "--as-of", as_of, "-o", str(target)]) == EXIT_OK
    return json.loads(target.read_text())


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> dict:
    return demo_sarif(tmp_path_factory.mktemp("sarif"))


def results_by_finding(sarif: dict) -> dict:
    return {
        (
            result["properties"]["cluster"],
            result["ruleId"],
            result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        ): result
        for result in sarif["runs"][0]["results"]
    }


def uri(result: dict) -> str:
    return result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def demo_cluster(name: str):
    demo = Path(str(resources.files("mutguard") / "demo"))
    report = build_report(snapshot.read(demo), datetime.fromisoformat(AS_OF).replace(tzinfo=UTC))
    return report, next(c for c in report.clusters if c.name == name)


def test_demo_sarif_is_valid_sarif_2_1_0(log):
    schema = json.loads((FIXTURES / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)
    results = log["runs"][0]["results"]
    rules = [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert results and all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
    assert any(r["ruleId"] == "rbac.anonymous_admin" and r["level"] == "error" for r in results)


def test_every_result_points_at_its_cluster_and_resource(log):
    findings = results_by_finding(log)
    anonymous_admin = findings[ANONYMOUS_ADMIN]
    assert uri(anonymous_admin) == "clusters/eks/111111111111/eu-west-1/payments-legacy"
    for result in findings.values():
        (location,) = result["locations"]
        assert location["physicalLocation"]["region"] == {"startLine": 1}
        assert location["logicalLocations"][0]["kind"] == "resource"
        parts = urlsplit(uri(result))
        assert not parts.scheme and not parts.netloc, uri(result)
        assert RELATIVE_PATH.fullmatch(uri(result)), uri(result)
        assert uri(result).startswith(f"clusters/{result['properties']['provider']}/")


def test_each_cluster_has_its_own_uri(log):
    clusters_by_uri: dict[str, set[str]] = {}
    for result in log["runs"][0]["results"]:
        clusters_by_uri.setdefault(uri(result), set()).add(result["properties"]["cluster"])
    assert len(clusters_by_uri) > 1
    assert all(len(clusters) == 1 for clusters in clusters_by_uri.values()), clusters_by_uri


def test_same_named_aks_clusters_in_two_resource_groups_get_two_uris():
    report, orders = demo_cluster("orders-aks")
    twin = orders.model_copy(
        update={"arn_or_id": orders.arn_or_id.replace("/rg-orders-prod/", "/rg-orders-dr/")}
    )
    sarif = json.loads(render(report.model_copy(update={"clusters": [orders, twin]}), "sarif"))
    assert {uri(r) for r in sarif["runs"][0]["results"]} == {
        "clusters/aks/3f2a9c1e-5b7d-4e8a-9c61-2d4f8b0e7a15/rg-orders-prod/westeurope/orders-aks",
        "clusters/aks/3f2a9c1e-5b7d-4e8a-9c61-2d4f8b0e7a15/rg-orders-dr/westeurope/orders-aks",
    }


def test_kubeconfig_cluster_uri_is_percent_encoded_with_a_placeholder_account():
    report, cluster = demo_cluster("payments-legacy")
    context = cluster.model_copy(
        update={
            "provider": Provider.KUBERNETES,
            "account": "",
            "location": "[::1]:6443",
            "name": "admin@prod eu/1",
            "arn_or_id": "https://[::1]:6443",
        }
    )
    sarif = json.loads(render(report.model_copy(update={"clusters": [context]}), "sarif"))
    assert {uri(r) for r in sarif["runs"][0]["results"]} == {
        "clusters/kubernetes/-/%5B%3A%3A1%5D%3A6443/admin%40prod%20eu%2F1"
    }


def test_uris_and_fingerprints_stay_put_across_scans(tmp_path, log):
    later = results_by_finding(demo_sarif(tmp_path, as_of="2026-09-15"))
    first = results_by_finding(log)
    assert first.keys() & later.keys()
    for finding in first.keys() & later.keys():
        assert uri(first[finding]) == uri(later[finding])
        assert first[finding]["partialFingerprints"] == later[finding]["partialFingerprints"]


def test_fingerprints_identify_one_finding_and_match_earlier_releases(log):
    fingerprints = [r["partialFingerprints"] for r in log["runs"][0]["results"]]
    # GitHub tells alerts apart by primaryLocationLineHash alone.
    line_hashes = [f["primaryLocationLineHash"] for f in fingerprints]
    assert len(set(line_hashes)) == len(line_hashes)
    anonymous_admin = results_by_finding(log)[ANONYMOUS_ADMIN]
    # The value mutguard 0.1.0 wrote: a changed formula would reopen every alert as a new one.
    assert anonymous_admin["partialFingerprints"] == dict.fromkeys(
        ("mutguard/v1", "primaryLocationLineHash"),
        "9b9bc7c354f2928a3fab388584ee6b178c93dce79bc4589584acf8c7345a3378",
    )


def test_rules_carry_markdown_help_with_rationale_remediation_and_links(log):
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    meta = next(c.meta for c in catalogue() if c.meta.id == "rbac.anonymous_admin")
    help_markdown = rules[meta.id]["help"]["markdown"]
    assert help_markdown.startswith(meta.rationale)
    for provider, title in ((Provider.EKS, "EKS"), (Provider.KUBERNETES, "Kubernetes")):
        # The summary, then each command as code on a line of its own.
        fix = meta.remediation[provider]
        commands = "".join(f"  - CLI: `{line}`\n" for line in fix.cli.splitlines())
        assert f"- **{title}**: {fix.summary}\n{commands}" in help_markdown
        assert f"{title}: {fix.summary}\n  CLI: " in rules[meta.id]["help"]["text"]
    for rule in rules.values():
        assert rule["help"]["text"].startswith(rule["fullDescription"]["text"])
        links = re.findall(r"^- <(https://[^>]+)>$", rule["help"]["markdown"], re.MULTILINE)
        assert rule.get("helpUri") == next(iter(links), None)


def test_driver_links_the_project_home(log):
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("urls", {})
    home = urls.get("Homepage") or urls.get("Repository")
    installed = metadata.metadata("mutguard").get_all("Project-URL") or []
    if sorted(installed) != sorted(f"{label}, {url}" for label, url in urls.items()):
        pytest.skip("the installed mutguard predates pyproject.toml's [project.urls]: make setup")
    assert log["runs"][0]["tool"]["driver"].get("informationUri") == home


def run_multitool(*args: object) -> subprocess.CompletedProcess:
    # bin.js hands its arguments to a shell unquoted; the .NET build it starts needs no ICU
    # (libicu) in invariant globalization mode, and validating JSON needs no culture data.
    return subprocess.run(
        [str(MULTITOOL), *(shlex.quote(str(arg)) for arg in args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT": "1"},
    )


@pytest.fixture(scope="module")
def github_rules_policy(tmp_path_factory) -> Path:
    """A multitool policy that turns on every GitHub rule (GHnnnn), at error level: the rules
    are off by default, so `--rule-kind Ghas` alone checks nothing."""
    if not MULTITOOL.exists():
        pytest.skip(
            f"sarif-multitool is not installed at {MULTITOOL}: `make test` installs it "
            "(npm install --prefix .tools @microsoft/sarif-multitool@5.7.0), or set SARIF_MULTITOOL"
        )
    if shutil.which("node") is None:
        pytest.skip("sarif-multitool needs Node.js (node on PATH) to start")
    directory = tmp_path_factory.mktemp("multitool")
    exported = directory / "exported.xml"
    done = run_multitool("export-validation-config", exported)
    if done.returncode or not exported.exists():
        pytest.skip(
            "sarif-multitool cannot run here (it needs @microsoft/sarif-multitool-linux, a "
            f"self-contained linux-x64 .NET build): {(done.stdout + done.stderr).strip()[-2000:]}"
        )
    rules = re.findall(r'Key="(GH\d+\.\w+\.Options)"', exported.read_text(encoding="utf-8-sig"))
    assert "GH1001.ProvideRequiredLocationProperties.Options" in rules
    enabled = "".join(
        f'<Properties Key="{rule}"><Property Key="RuleEnabled" Value="Error" '
        'Type="Driver.RuleEnabledState" /></Properties>'
        for rule in rules
    )
    policy = directory / "github-rules.xml"
    policy.write_text(f'<?xml version="1.0" encoding="utf-8"?><Properties>{enabled}</Properties>')
    return policy


def test_github_code_scanning_rules_accept_the_demo_sarif(tmp_path, log, github_rules_policy):
    ours = tmp_path / "mutguard.sarif"
    ours.write_text(json.dumps(log))
    # The same log without physical locations, as mutguard wrote it before: proves the GitHub
    # rules ran.
    canary = tmp_path / "canary.sarif"
    unlocated = copy.deepcopy(log)
    for result in unlocated["runs"][0]["results"]:
        result["locations"][0].pop("physicalLocation")
    canary.write_text(json.dumps(unlocated))
    out = tmp_path / "validation.sarif"
    done = run_multitool(
        "validate", ours, canary, "--config", github_rules_policy, "--rule-kind", "Sarif", "Ghas",
        "-o", out, "--quiet", "true",
    )  # fmt: skip
    # It exits 0 whatever it finds, and may crash while printing: its log is the verdict.
    assert out.exists(), done.stdout + done.stderr
    (run,) = json.loads(out.read_text())["runs"]
    assert run["invocations"][0]["executionSuccessful"], run["invocations"]
    errors: dict[str, list[str]] = {}
    for result in run["results"]:
        if result.get("level", "warning") == "error":
            file = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            errors.setdefault(Path(urlsplit(file).path).name, []).append(result["ruleId"])
    assert "GH1001" in errors.pop("canary.sarif", [])
    assert errors == {}, json.dumps(run["results"], indent=1)[:5000]
