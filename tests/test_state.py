"""Memory between runs: what is new, worse, resolved or unchanged; suppressions; SQLite store."""

import datetime
import sqlite3
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from mutguard.errors import StoreError
from mutguard.models import ClusterReport, Report, Severity, Status, cluster_key
from mutguard.providers import snapshot
from mutguard.publish.stores.sqlite import SqliteStateStore, default_state_path
from mutguard.scan import build_report
from mutguard.state import ClusterState, Mut, changes, next_state
from mutguard.suppressions import SuppressionError, load_suppressions, parse_suppressions

from builders import varied

TODAY = datetime.date(2026, 3, 1)


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(
        snapshot.read(demo), datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
    )


def cluster_named(report: Report, name: str) -> ClusterReport:
    return next(c for c in report.clusters if c.name == name)


def with_cluster(report: Report, cluster: ClusterReport) -> Report:
    """The report with one cluster replaced (matched by name)."""
    clusters = [cluster if c.name == cluster.name else c for c in report.clusters]
    return report.model_copy(update={"clusters": clusters})


def first_fail(cluster: ClusterReport, severity: Severity | None = None):
    return next(
        f
        for f in cluster.findings
        if f.status is Status.FAIL and (severity is None or f.severity is severity)
    )


def replace_finding(cluster: ClusterReport, old, **update) -> ClusterReport:
    findings = [varied(f, **update) if f is old else f for f in cluster.findings]
    return cluster.model_copy(update={"findings": findings})


def news(report: Report, previous, **kwargs):
    return {c.cluster.name: c for c in changes(previous, report, **kwargs) if c.has_news}


def test_first_run_reports_every_failure_as_new():
    report = demo_report()
    found = changes({}, report)
    assert [c.cluster.name for c in found] == [c.name for c in report.clusters]
    for change in found:
        failed = [f for f in change.cluster.findings if f.status is Status.FAIL]
        assert change.first_seen and list(change.new) == failed
        assert not change.resolved and not change.worsened
    assert all(c.has_news for c in found)  # every demo cluster fails something
    # A cluster that fails nothing has nothing to say, even on a first run.
    core = cluster_named(report, "platform-core")
    passing = [
        f.model_copy(update={"status": Status.PASS, "mut_gain": None})
        if f.status is Status.FAIL
        else f
        for f in core.findings
    ]
    clean = with_cluster(report, core.model_copy(update={"findings": passing}))
    assert {c.cluster.name for c in changes({}, clean) if not c.has_news} == {"platform-core"}


def test_an_unchanged_rerun_has_nothing_to_say():
    report = demo_report()
    state = next_state({}, report)
    assert news(report, state) == {}


def test_a_mut_drop_is_worse_even_without_a_new_finding():
    report = demo_report()
    state = next_state({}, report)
    prod = cluster_named(report, "shop-prod")
    worse = prod.model_copy(update={"mut_credential": prod.mut_credential - 1})
    found = news(with_cluster(report, worse), state)
    assert list(found) == ["shop-prod"]
    change = found["shop-prod"]
    assert change.mut_dropped == ("mut_credential",) and change.worsened
    assert change.before == Mut.of(prod) and change.after == Mut.of(worse)
    assert not change.new and not change.resolved


def test_a_rise_in_severity_is_worse():
    report = demo_report()
    state = next_state({}, report)
    prod = cluster_named(report, "shop-prod")
    medium = first_fail(prod, Severity.MEDIUM)
    found = news(with_cluster(report, replace_finding(prod, medium, severity=Severity.HIGH)), state)
    (rise,) = found["shop-prod"].severity_rose
    assert rise.before is Severity.MEDIUM and rise.finding.check_id == medium.check_id


def test_a_finding_that_passes_or_is_gone_is_resolved():
    report = demo_report()
    state = next_state({}, report)
    prod = cluster_named(report, "shop-prod")
    fixed = first_fail(prod, Severity.CRITICAL)
    now_passing = replace_finding(prod, fixed, status=Status.PASS, mut_gain=None)
    (resolved,) = news(with_cluster(report, now_passing), state)["shop-prod"].resolved
    assert (resolved.check_id, resolved.resource, resolved.now) == (
        fixed.check_id,
        fixed.resource,
        Status.PASS,
    )
    gone = prod.model_copy(update={"findings": [f for f in prod.findings if f is not fixed]})
    (resolved,) = news(with_cluster(report, gone), state)["shop-prod"].resolved
    assert resolved.now is None and resolved.severity is Severity.CRITICAL


def test_a_failure_that_turns_unknown_is_neither_resolved_nor_new():
    report = demo_report()
    state = next_state({}, report)
    prod = cluster_named(report, "shop-prod")
    unknown = replace_finding(prod, first_fail(prod), status=Status.UNKNOWN)
    assert news(with_cluster(report, unknown), state) == {}


def unreadable(cluster: ClusterReport) -> ClusterReport:
    return cluster.model_copy(
        update={
            "mut": None,
            "mut_workload": None,
            "mut_credential": None,
            "findings": [],
            "paths": [],
            "errors": ["cluster.json: AccessDenied"],
        }
    )


def test_an_unreadable_cluster_alerts_once_and_keeps_what_was_last_seen():
    report = demo_report()
    state = next_state({}, report)
    prod = cluster_named(report, "shop-prod")
    blind = with_cluster(report, unreadable(prod))
    found = news(blind, state)
    assert list(found) == ["shop-prod"]
    assert found["shop-prod"].became_unreadable and not found["shop-prod"].resolved

    blind_state = next_state(state, blind)
    key = cluster_key(prod)
    assert not blind_state[key].readable
    assert blind_state[key].findings == state[key].findings
    assert news(blind, blind_state) == {}  # still unreadable: said already
    assert news(report, blind_state) == {}  # readable again, nothing changed meanwhile


SUPPRESSIONS = """
suppressions:
  - check_id: {check_id}
    cluster: shop-prod
    owner: platform-team@example.com
    reason: public endpoint needed until the VPN cut-over (CHG-1234)
    expires: {expires}
"""


def test_a_suppressed_failure_is_not_alerted_and_alerts_again_when_the_suppression_expires(
    tmp_path: Path,
):
    report = demo_report()
    prod = cluster_named(report, "shop-prod")
    critical = first_fail(prod, Severity.CRITICAL)
    rules_file = tmp_path / "suppressions.yaml"
    rules_file.write_text(SUPPRESSIONS.format(check_id=critical.check_id, expires="2026-03-31"))
    rules = load_suppressions(rules_file)

    first = news(report, {}, suppressions=rules)
    assert critical.check_id not in {f.check_id for f in first["shop-prod"].new}
    # The rule names shop-prod: the same check still alerts in other clusters.
    elsewhere = [c for name, c in first.items() if name != "shop-prod"]
    assert any(critical.check_id in {f.check_id for f in c.new} for c in elsewhere)

    state = next_state({}, report, rules)
    assert news(report, state, suppressions=rules) == {}
    # The same findings a month later: suppressions are judged on the report's date.
    expired = report.model_copy(
        update={"generated_at": datetime.datetime(2026, 4, 1, 8, 0, tzinfo=datetime.UTC)}
    )
    found = {c.cluster.name: c for c in changes(state, expired, rules) if c.has_news}
    assert list(found) == ["shop-prod"]
    assert [f.check_id for f in found["shop-prod"].new] == [critical.check_id]


def test_a_suppression_can_be_narrowed_to_one_resource():
    report = demo_report()
    prod = cluster_named(report, "shop-prod")
    admin = next(f for f in prod.findings if f.check_id == "eks.access.admin_policy")
    rule = {"check_id": admin.check_id, "owner": "o", "reason": "r", "expires": "2026-12-31"}
    (exact,) = parse_suppressions({"suppressions": [{**rule, "resource": admin.resource}]})
    (other,) = parse_suppressions({"suppressions": [{**rule, "resource": "arn:aws:iam::1:role/x"}]})
    assert exact.covers(prod, admin) and not other.covers(prod, admin)


def test_the_last_day_of_a_suppression_still_counts():
    report = demo_report()
    critical = first_fail(cluster_named(report, "shop-prod"), Severity.CRITICAL)
    rules = parse_suppressions(
        {
            "suppressions": [
                {
                    "check_id": critical.check_id,
                    "owner": "o",
                    "reason": "r",
                    "expires": "2026-03-01",
                }
            ]
        }
    )
    assert rules[0].active(TODAY) and not rules[0].active(TODAY + datetime.timedelta(days=1))


@pytest.mark.parametrize("missing", ["owner", "reason", "expires"])
def test_a_suppression_without_owner_reason_or_expiry_is_rejected_naming_the_entry(missing):
    entry = {
        "check_id": "eks.endpoint.public_unrestricted",
        "owner": "platform-team@example.com",
        "reason": "needed until the VPN cut-over",
        "expires": "2026-03-31",
    }
    del entry[missing]
    ok = {**entry, missing: "2026-01-01" if missing == "expires" else "x"}
    with pytest.raises(SuppressionError) as caught:
        parse_suppressions({"suppressions": [ok, entry]}, "team.yaml")
    assert str(caught.value) == (
        f"team.yaml: suppression #2 (eks.endpoint.public_unrestricted): {missing} is required"
    )


def test_a_blank_owner_or_an_unknown_key_is_rejected():
    base = {"check_id": "a.b", "owner": "o", "reason": "r", "expires": "2026-01-01"}
    with pytest.raises(SuppressionError, match=r"#1 \(a\.b\): owner"):
        parse_suppressions({"suppressions": [{**base, "owner": "  "}]})
    with pytest.raises(SuppressionError, match="approved_by"):
        parse_suppressions({"suppressions": [{**base, "approved_by": "x"}]})
    with pytest.raises(SuppressionError, match="'suppressions' list"):
        parse_suppressions([base])


def test_the_sqlite_store_round_trips_and_keeps_clusters_it_was_not_given(tmp_path: Path):
    report = demo_report()
    store = SqliteStateStore(tmp_path / "state" / "mutguard.sqlite3")
    keys = [cluster_key(c) for c in report.clusters]
    assert store.load(keys) == {}

    state = next_state({}, report)
    store.save(state)
    assert store.load(keys) == state
    assert store.load(["eks:0:nowhere:absent"]) == {}

    prod = cluster_named(report, "shop-prod")
    smaller = report.model_copy(update={"clusters": [unreadable(prod)]})
    store.save(next_state(state, smaller))
    loaded = store.load(keys)
    assert not loaded[cluster_key(prod)].readable
    others = {k: v for k, v in loaded.items() if k != cluster_key(prod)}
    assert others == {k: v for k, v in state.items() if k != cluster_key(prod)}


def test_cluster_state_has_a_json_form_for_document_stores():
    state = next_state({}, demo_report())
    for value in state.values():
        assert ClusterState.from_dict(value.to_dict()) == value


def test_the_default_state_file_is_configurable():
    assert default_state_path({"MUTGUARD_STATE_FILE": "/srv/mg.db"}) == Path("/srv/mg.db")
    assert default_state_path({"XDG_STATE_HOME": "/x"}) == Path("/x/mutguard/state.sqlite3")


def test_the_sqlite_store_claims_each_key_once_and_forgets_claims_after_a_week(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    one = ("eks:1:eu-west-1:shop", "2026-03-01T08:00:00+00:00/0123456789abcdef")
    two = ("digest", "2026-03-01T08:00:00+00:00/fedcba9876543210")
    assert SqliteStateStore(path).claim([one, two, one]) == {one, two}
    assert SqliteStateStore(path).claim([one, two]) == set()
    SqliteStateStore(path).release([two])
    assert SqliteStateStore(path).claim([two]) == {two}

    # A claim made more than CLAIM_DAYS ago is dropped by the next claim (the clock is read
    # here as the store reads it, so this holds on any date).
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=8)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE claims SET claimed_at = ? WHERE cluster_key = ?",
            (long_ago.isoformat(timespec="seconds"), one[0]),
        )
    assert SqliteStateStore(path).claim([one, two]) == {one}


def test_a_sqlite_store_that_cannot_be_claimed_in_names_the_file(tmp_path: Path):
    with pytest.raises(StoreError) as caught:
        SqliteStateStore(tmp_path).claim([("eks:1:eu-west-1:shop", "2026-03-01T08:00:00+00:00")])
    assert str(caught.value) == (
        f"could not claim alerts in the state: state store sqlite:{tmp_path}: "
        "unable to open database file"
    )
