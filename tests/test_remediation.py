"""Each check's remediation as fields: what to do in one sentence, then where to do it (the
command, the Terraform setting, the console), plausible for the provider it is written for, the
same in the report and read back, and told the same way by every human format."""

import json
import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from mutguard.checks import catalogue
from mutguard.cli import EXIT_OK, EXIT_USAGE, main
from mutguard.models import Provider, Remediation, Report
from mutguard.providers import snapshot
from mutguard.render.summary import remediation_fields, remediation_text
from mutguard.scan import build_report

# The command-line tools a fix may run, by provider: its cloud's CLI, and kubectl for what is in
# the cluster (a kubeconfig cluster has no cloud of its own).
TOOLS = {
    Provider.EKS: {"aws", "kubectl"},
    Provider.GKE: {"gcloud", "kubectl"},
    Provider.AKS: {"az", "kubectl"},
    Provider.KUBERNETES: {"kubectl"},
}
# The prefixes of the Terraform resource types of each cloud's provider; the network rule in
# front of a self-managed API server may be in any cloud.
RESOURCE_PREFIXES = {
    Provider.EKS: ("aws",),
    Provider.GKE: ("google",),
    Provider.AKS: ("azurerm",),
    Provider.KUBERNETES: ("aws", "google", "azurerm", "kubernetes"),
}
# Where no resource holds the setting, the field says so, and why: "None ...: why".
NO_RESOURCE = re.compile(r"^None\b[^:]*: \w")
FIELDS = ("cli", "terraform", "console")
AS_OF = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@cache
def demo_report() -> Report:
    return build_report(snapshot.read(Path(str(resources.files("mutguard") / "demo"))), AS_OF)


def remediations() -> list[tuple[str, Provider, Remediation]]:
    return [
        (check.meta.id, provider, check.meta.remediation[provider])
        for check in catalogue()
        for provider in check.meta.providers
    ]


def test_the_catalogue_has_remediations_for_every_provider():
    found = remediations()
    assert {provider for _, provider, _ in found} == set(TOOLS)
    assert len(found) > len(catalogue())  # the common checks' have one per provider


def test_every_remediation_says_what_to_do_in_one_sentence_and_where_to_do_it():
    for check_id, provider, fix in remediations():
        where = f"{check_id} on {provider.value}"
        assert fix.summary == fix.summary.strip() and fix.summary.endswith("."), where
        # One sentence: no full stop followed by another sentence, outside `code` spans.
        prose = re.sub(r"`[^`]*`", "code", fix.summary)
        assert not re.search(r"\.\s+[A-Z]", prose), where
        assert any(getattr(fix, field) for field in FIELDS), where


def test_the_fields_hold_plain_text_that_formats_set_themselves():
    for check_id, provider, fix in remediations():
        for field in FIELDS:
            text = getattr(fix, field)
            if text is not None:
                where = f"{check_id} on {provider.value}: {field}"
                assert text and "`" not in text and not text.endswith("."), where
                assert all(line == line.strip() and line for line in text.split("\n")), where


def test_every_command_runs_the_providers_own_tools():
    commands = 0
    for check_id, provider, fix in remediations():
        for command in (fix.cli or "").splitlines():
            assert command.split()[0] in TOOLS[provider], f"{check_id} on {provider.value}"
            commands += 1
    assert commands > len(catalogue())


# The arguments that say which cluster a cloud command changes, as each CLI requires them:
# `az aks create/update/...` --resource-group (-g) and --name (-n), `az aks nodepool ...` the
# cluster as --cluster-name; `aws eks` --name or --cluster-name; `gcloud container clusters`
# the cluster's name and --location, `node-pools` the cluster as --cluster (without --location
# gcloud falls back to a configured default, which may be another cluster's).
CLUSTER_NAMED = {
    "az aks nodepool": (r"-g RG\b", r"--cluster-name NAME\b", r"-n POOL\b"),
    "az aks": (r"-g RG\b", r"-n NAME\b"),
    "aws eks": (r"--(?:cluster-)?name NAME\b",),
    "gcloud container clusters": (
        r"^gcloud container clusters \w+ NAME\b",
        r"--location LOCATION\b",
    ),
    "gcloud container node-pools": (r"--cluster NAME\b", r"--location LOCATION\b"),
}


def test_every_cloud_command_names_the_cluster_it_changes():
    commands = 0
    for check_id, provider, fix in remediations():
        for command in (fix.cli or "").splitlines():
            tool = next((t for t in CLUSTER_NAMED if command.startswith(t + " ")), None)
            if tool is None:
                continue
            commands += 1
            for argument in CLUSTER_NAMED[tool]:
                assert re.search(argument, command), f"{check_id} on {provider.value}: {command}"
    assert commands > 50


def test_terraform_names_a_resource_of_the_providers_cloud_or_says_why_none():
    for check_id, provider, fix in remediations():
        if fix.terraform is None:
            continue
        prefixes = "|".join(RESOURCE_PREFIXES[provider])
        resource = re.search(rf"\b(?:{prefixes})_[a-z0-9]+(?:_[a-z0-9]+)*\b", fix.terraform)
        assert resource or NO_RESOURCE.match(fix.terraform), f"{check_id} on {provider.value}"


def test_a_provider_specific_check_tells_its_cloud_resource():
    for check_id, provider, fix in remediations():
        if provider is not Provider.KUBERNETES and check_id.startswith(f"{provider.value}."):
            assert fix.terraform and not NO_RESOURCE.match(fix.terraform), check_id
            assert fix.terraform.startswith(RESOURCE_PREFIXES[provider][0] + "_"), check_id


def test_the_report_writes_the_fields_set_and_reads_them_back():
    report = demo_report()
    written = json.loads(report.to_json())
    fields = set()
    for summary in written["checks"].values():
        for fix in summary["remediation"].values():
            assert fix["summary"] and None not in fix.values()
            fields |= set(fix)
    assert {"summary", "cli", "terraform"} <= fields <= {"summary", *FIELDS}
    read = Report.model_validate_json(report.to_json())
    for before, after in zip(report.clusters, read.clusters, strict=True):
        assert [f.remediation for f in before.findings] == [f.remediation for f in after.findings]


@pytest.mark.parametrize(
    ("remediation", "says"),
    [
        ({"cli": "kubectl get pods"}, "not a check summary"),
        ({"summary": "Fix it.", "shell": "rm -rf /"}, "not a check summary"),
    ],
)
def test_a_report_with_a_malformed_remediation_is_refused_in_one_line(
    tmp_path, capsys, remediation, says
):
    written = json.loads(demo_report().to_json())
    check_id = next(iter(written["checks"]))
    provider = next(iter(written["checks"][check_id]["remediation"]))
    written["checks"][check_id]["remediation"][provider] = remediation
    path = tmp_path / "report.json"
    path.write_text(json.dumps(written))
    assert main(["publish", str(path), "--to", "webhook", "--dry-run"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert f"checks[{check_id!r}]: {says}" in error and len(error.strip().splitlines()) == 1


def test_the_text_form_is_the_summary_then_each_field_labelled():
    fix = Remediation(
        summary="Do the thing.",
        cli="aws eks one --name NAME\naws eks two",
        terraform="aws_eks_cluster setting = true",
        console="EKS > Clusters > NAME > Networking",
    )
    assert remediation_text(fix) == (
        "Do the thing.\n"
        "CLI: aws eks one --name NAME\n"
        "     aws eks two\n"
        "Terraform: aws_eks_cluster setting = true\n"
        "Console: EKS > Clusters > NAME > Networking"
    )
    assert remediation_text(fix, code_spans=True).splitlines()[1:3] == [
        "CLI: `aws eks one --name NAME`",
        "     `aws eks two`",
    ]
    assert [(f.label, f.commands) for f in remediation_fields(fix)] == [
        ("CLI", True),
        ("Terraform", False),
        ("Console", False),
    ]
    assert remediation_text(Remediation(summary="Only this.")) == "Only this."


def test_the_checks_listing_writes_the_fields(capsys):
    assert main(["checks", "--format", "json"]) == EXIT_OK
    listed = {c["id"]: c for c in json.loads(capsys.readouterr().out)}
    assert set(listed) == {c.meta.id for c in catalogue()}
    for check in catalogue():
        written = listed[check.meta.id]["remediation"]
        assert written == {
            provider.value: fix.model_dump(mode="json")
            for provider, fix in check.meta.remediation.items()
        }
        assert all(None not in fix.values() for fix in written.values())
