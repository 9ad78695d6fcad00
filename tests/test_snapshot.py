"""Offline snapshots: the layout (docs/architecture.md, Snapshot layout), and bad input that is
named, never lost."""

import json
import shutil
from pathlib import Path

import pytest

from mutguard.errors import InputError
from mutguard.models import Status
from mutguard.providers import snapshot
from mutguard.scan import build_report
from mutguard.sources import ClusterSource, Provider, ScanError

from builders import OBSERVED_AT, describe_cluster, rbac_list


def write_cluster(root: Path, name: str, **documents) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    for file_name, content in documents.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (directory / f"{file_name.replace('_', '-')}.json").write_text(text)
    return directory


def scan(root: Path):
    return build_report(snapshot.read(root), OBSERVED_AT)


def test_one_cluster_directory_or_a_directory_of_them(tmp_path):
    one = write_cluster(tmp_path, "a", cluster=describe_cluster("a"))
    write_cluster(tmp_path, "b", cluster=describe_cluster("b"))
    assert [c.name for c in scan(one).clusters] == ["a"]
    assert [c.name for c in scan(tmp_path).clusters] == ["a", "b"]


def test_empty_or_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match=r"no cluster\.json"):
        list(snapshot.read(tmp_path))
    with pytest.raises(InputError, match="nope: no such file or directory"):
        list(snapshot.read(tmp_path / "nope"))


def test_bad_clusters_are_named_and_the_others_still_report(tmp_path):
    write_cluster(tmp_path, "good", cluster=describe_cluster("good"))
    write_cluster(tmp_path, "truncated", cluster=json.dumps(describe_cluster("t"))[:120])
    write_cluster(tmp_path, "gke-looking", cluster={"name": "x", "selfLink": "https://container"})
    wrong_type = describe_cluster("wrong-type")
    wrong_type["cluster"]["resourcesVpcConfig"]["publicAccessCidrs"] = "0.0.0.0/0"
    write_cluster(tmp_path, "wrong-type", cluster=wrong_type)

    report = scan(tmp_path)
    by_name = {c.name: c for c in report.clusters}
    assert by_name["good"].mut is not None
    assert by_name["wrong-type"].mut is None
    assert "publicAccessCidrs" in by_name["wrong-type"].errors[0]
    errors = {e.scope: e.message for e in report.errors}
    assert "cluster.json is not valid JSON" in errors[f"snapshot:{tmp_path / 'truncated'}"]
    assert "is not `aws eks describe-cluster`" in errors[f"snapshot:{tmp_path / 'gke-looking'}"]


def test_corrupt_optional_document_makes_its_checks_unknown(tmp_path):
    write_cluster(tmp_path, "c", cluster=describe_cluster("c"), rbac="{not json")
    cluster = scan(tmp_path).clusters[0]
    rbac = next(f for f in cluster.findings if f.check_id == "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN and "rbac.json is not valid JSON" in rbac.detail
    assert any("rbac.json" in e for e in cluster.errors)


def test_recorded_collection_errors_explain_unknowns(tmp_path):
    directory = write_cluster(tmp_path, "c", cluster=describe_cluster("c"))
    (directory / "errors.json").write_text(
        json.dumps({"access-entries.json": "eks:ListAccessEntries: AccessDeniedException: no"})
    )
    cluster = scan(tmp_path).clusters[0]
    result = next(f for f in cluster.findings if f.check_id == "eks.access.admin_policy")
    assert result.status is Status.UNKNOWN and "AccessDeniedException" in result.detail


@pytest.mark.parametrize(
    ("document", "content", "check_id"),
    [
        ("probe", {"anonymous": "yes"}, "eks.auth.anonymous"),
        ("access_entries", {"accessEntries": "nope"}, "eks.access.admin_policy"),
        ("identity_providers", [{"identityProviderConfig": {}}], "eks.auth.oidc_prefixes"),
        ("rbac", {"items": [{"kind": "Role"}]}, "rbac.anonymous_admin"),
    ],
)
def test_malformed_optional_document_is_named_and_the_cluster_still_assessed(
    tmp_path, document, content, check_id
):
    write_cluster(
        tmp_path, "c", cluster=describe_cluster("c", version="next"), **{document: content}
    )
    cluster = scan(tmp_path).clusters[0]
    assert cluster.mut is not None
    file_name = document.replace("_", "-") + ".json"
    assert any(e.startswith(f"{file_name}: ") for e in cluster.errors)
    result = next(f for f in cluster.findings if f.check_id == check_id)
    assert result.status is Status.UNKNOWN


def test_write_then_read_is_the_same_scan(tmp_path):
    source = ClusterSource(
        Provider.EKS,
        "prod",
        "eu-west-1",
        "123456789012",
        documents={"cluster.json": describe_cluster(), "rbac.json": rbac_list()},
        errors={"access-entries.json": "eks:ListAccessEntries: AccessDeniedException: denied"},
    )
    written = snapshot.write(source, tmp_path)
    assert written.name == "eks_123456789012_eu-west-1_prod"
    assert sorted(p.name for p in written.iterdir()) == ["cluster.json", "errors.json", "rbac.json"]
    direct = build_report([source], OBSERVED_AT).clusters[0]
    offline = scan(tmp_path).clusters[0]
    assert offline.model_dump() == direct.model_dump()


def test_bundled_demo_is_a_valid_snapshot(tmp_path):
    from importlib import resources

    demo = Path(str(resources.files("mutguard") / "demo"))
    shutil.copytree(demo, tmp_path / "demo")
    items = list(snapshot.read(tmp_path / "demo"))
    directories = [d for d in demo.iterdir() if (d / "cluster.json").is_file()]
    assert len(items) == len(directories) >= 5
    assert not [i for i in items if isinstance(i, ScanError)]
