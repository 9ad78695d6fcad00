"""Queue and webhook messages: one cluster's versioned report per message, split to fit a sink."""

import datetime
import json
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from mutguard.models import SCHEMA_VERSION, BlastRadius, ClusterReport, Report, Status
from mutguard.providers import snapshot
from mutguard.publish.messages import (
    ATTRIBUTES,
    PUBSUB_LIMIT,
    SPLIT_FIELDS,
    SQS_SNS_LIMIT,
    SQS_SNS_MAX_LIMIT,
    STORAGE_QUEUE_LIMIT,
    ClusterMessage,
    MessageTooLarge,
    cluster_messages,
    message_schema,
    message_size,
)
from mutguard.scan import build_report
from mutguard.state import changes, next_state

ROOT = Path(__file__).parents[1]
MESSAGE_SCHEMA = ROOT / "schemas" / "message.schema.json"
REPORT_SCHEMA = ROOT / "schemas" / "report.schema.json"


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    generated_at = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
    return build_report(snapshot.read(demo), generated_at)


def validators() -> list[jsonschema.Draft202012Validator]:
    schemas = (json.loads(MESSAGE_SCHEMA.read_text()), json.loads(REPORT_SCHEMA.read_text()))
    return [jsonschema.Draft202012Validator(schema) for schema in schemas]


def big_cluster(findings: int, workloads: int = 0) -> ClusterReport:
    """payments-legacy with its failures repeated on many resources, as a cluster with
    thousands of workloads produces."""
    base = next(c for c in demo_report().clusters if c.name == "payments-legacy")
    failing = [f for f in base.findings if f.status is Status.FAIL]
    many = [
        failing[i % len(failing)].model_copy(update={"resource": f"apps/deployment-{i:05d}"})
        for i in range(findings)
    ]
    # Each workload's route: a step of its own, one it shares with a tenth of the others and
    # one every route shares with the cluster's paths.
    shared = base.paths[0].steps[-1]
    radius = [
        BlastRadius(
            workload=f"apps/worker-{i:05d}",
            mut=1,
            steps=[
                f"authentication (0): Pod apps/worker-{i:05d} mounts the token of worker",
                f"authentication (0): service account worker-{i % 10} is an identity",
                shared,
            ],
        )
        for i in range(workloads)
    ]
    # Every part repeats the header, so the platform's grants are divided like the rest.
    assert base.platform_grants  # the demo cluster holds the bootstrap policy
    grants = [base.platform_grants[i % len(base.platform_grants)] for i in range(400)]
    platform = [g.model_copy(update={"subject": f"User u-{i:04d}"}) for i, g in enumerate(grants)]
    return base.model_copy(
        update={"findings": many, "blast_radius": radius, "platform_grants": platform}
    )


def test_committed_message_schema_matches_the_model():
    assert json.loads(MESSAGE_SCHEMA.read_text()) == message_schema(), (
        "run `python -m mutguard.publish.messages > schemas/message.schema.json`"
    )


def test_limits_are_the_documented_ones():
    assert SQS_SNS_LIMIT == 262_144 and SQS_SNS_MAX_LIMIT == 1_048_576
    assert STORAGE_QUEUE_LIMIT == 65_536 and PUBSUB_LIMIT == 10_000_000


def test_a_cluster_fits_one_message_that_is_a_valid_report_of_that_cluster_alone():
    report = demo_report()
    found = changes({}, report)
    for cluster, change in zip(report.clusters, found, strict=True):
        (message,) = cluster_messages(report, cluster, change)
        body = json.loads(message.body)
        for validator in validators():
            validator.validate(body)
        assert body["schema_version"] == SCHEMA_VERSION and (body["part"], body["parts"]) == (1, 1)
        alone = report.model_copy(update={"clusters": [cluster]})
        assert body["clusters"] == json.loads(alone.to_json())["clusters"]
        assert body["platform_reasons"] == list(
            dict.fromkeys(g.why for g in cluster.platform_grants)
        )
        # The checks of this cluster's findings, with this cluster's provider's remediation.
        assert set(body["checks"]) == {f.check_id for f in cluster.findings}
        assert {p for c in body["checks"].values() for p in c["remediation"]} == {
            cluster.provider.value
        }
        assert body["change"]["first_seen"] is True
        assert body["change"]["new"] == sum(f.status is Status.FAIL for f in cluster.findings)


def test_attributes_let_subscribers_filter():
    report = demo_report()
    legacy = next(c for c in report.clusters if c.name == "payments-legacy")
    (first_run,) = cluster_messages(report, legacy, changes({}, report)[2])
    assert first_run.attributes == {
        "schema_version": SCHEMA_VERSION,
        "provider": "eks",
        "cluster": "payments-legacy",
        "account": "111111111111",
        "location": "eu-west-1",
        "severity": "critical",
        "mut": 0,
        "mut_lowest": 0,
        "change": "new",
        "part": 1,
        "parts": 1,
    }
    assert set(first_run.attributes) == set(ATTRIBUTES)  # every key is documented
    rerun = changes(next_state({}, report), report)[2]
    assert cluster_messages(report, legacy, rerun)[0].attributes["change"] == "unchanged"
    assert cluster_messages(report, legacy)[0].attributes["change"] == "unknown"


@pytest.mark.parametrize("limit", [SQS_SNS_LIMIT, STORAGE_QUEUE_LIMIT])
def test_a_cluster_too_big_for_one_message_is_split_into_valid_parts(limit):
    report = demo_report()
    cluster = big_cluster(findings=1500, workloads=300)
    messages = cluster_messages(report, cluster, limit=limit)
    assert len(messages) > 1
    bodies = [json.loads(m.body) for m in messages]
    original = json.loads(cluster.model_dump_json(by_alias=True))
    for message, body in zip(messages, bodies, strict=True):
        assert message.size <= limit
        for validator in validators():
            validator.validate(body)
        parsed = ClusterMessage.model_validate(body)
        assert set(body["checks"]) == {f.check_id for f in parsed.clusters[0].findings}
        (part,) = body["clusters"]
        assert (part["mut"], part["paths"]) == (0, original["paths"])
        assert message.attributes["severity"] == "critical"  # of the whole cluster, every part
    assert [(b["part"], b["parts"]) for b in bodies] == [
        (i, len(bodies)) for i in range(1, len(bodies) + 1)
    ]
    findings = [f for b in bodies for f in b["clusters"][0]["findings"]]
    assert findings == original["findings"]
    # Each part numbers the route steps and platform reasons it holds itself: read back, the
    # routes and grants are the same.
    parts = [ClusterMessage.model_validate(body).clusters[0] for body in bodies]
    assert [r for part in parts for r in part.blast_radius] == cluster.blast_radius
    assert [g for part in parts for g in part.platform_grants] == cluster.platform_grants


@pytest.mark.parametrize("limit", [SQS_SNS_LIMIT, STORAGE_QUEUE_LIMIT])
def test_parts_are_full_counting_the_checks_each_part_carries(limit):
    """Each part but the last is refused the next part's first entry: the sizing counts each
    part's `checks` exactly, so parts are neither over the limit nor needlessly many."""
    report = demo_report()
    cluster = big_cluster(findings=1500, workloads=300)
    messages = cluster_messages(report, cluster, limit=limit)
    parsed = [ClusterMessage.model_validate_json(m.body) for m in messages]
    # The sizing keeps room for a part number as long as any part's could be (one per entry).
    most = sum(len(getattr(cluster, name)) for name in SPLIT_FIELDS)
    numbered = {"part": most, "parts": most}
    for message, part, following in zip(messages, parsed, parsed[1:], strict=False):
        (held,) = part.clusters
        (next_held,) = following.clusters
        name = next(n for n in SPLIT_FIELDS if getattr(next_held, n))
        more = held.model_copy(update={name: [*getattr(held, name), getattr(next_held, name)[0]]})
        fuller = part.model_copy(update={"clusters": [more], **numbered})
        fuller_size = message_size(
            fuller.model_dump_json(by_alias=True), {**message.attributes, **numbered}
        )
        assert message.size <= limit < fuller_size


def test_a_single_finding_larger_than_the_limit_is_refused_by_name():
    report = demo_report()
    cluster = big_cluster(findings=3)
    huge = cluster.findings[1].model_copy(update={"detail": "x" * 70_000})
    cluster = cluster.model_copy(update={"findings": [cluster.findings[0], huge]})
    with pytest.raises(
        MessageTooLarge, match=r"cannot fit the 65536-byte limit \(.*deployment-00001"
    ):
        cluster_messages(report, cluster, limit=STORAGE_QUEUE_LIMIT)
