"""The invoke payload every function shares, and the fan-out and settings behind it.

The handlers of each cloud are tested against local servers in test_functions_{aws,gcp,azure}.py;
these tests pin down what a user may send and what a bad payload gets back.
"""

import enum
import json
from dataclasses import replace

import pytest

from mutguard.errors import ConfigurationError
from mutguard.functions.payload import (
    MAX_TARGETS,
    InvokePayload,
    PayloadError,
    Target,
    parse_payload,
)
from mutguard.functions.runtime import Settings, fan_out, run_scan

DESIGN_EXAMPLE = {
    "action": "scan",
    "targets": [
        {"provider": "eks", "account": "123456789012", "region": "eu-west-1", "cluster": "prod"}
    ],
    "publish": True,
    "sinks": ["slack"],
    "include_rbac": True,
}


def test_the_design_example_is_accepted_as_json_text_bytes_or_object():
    for raw in (DESIGN_EXAMPLE, json.dumps(DESIGN_EXAMPLE), json.dumps(DESIGN_EXAMPLE).encode()):
        payload = parse_payload(raw)
        assert payload.targets == [
            Target(provider="eks", account="123456789012", region="eu-west-1", cluster="prod")
        ]
        assert (payload.publish, payload.sinks, payload.include_rbac) == (True, ["slack"], True)
    assert parse_payload(parse_payload(DESIGN_EXAMPLE).to_message()) == parse_payload(
        DESIGN_EXAMPLE
    )


def target(**changes):
    return {**DESIGN_EXAMPLE["targets"][0], **changes}


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        ({**DESIGN_EXAMPLE, "include_rbca": True}, "include_rbca", "unknown field"),
        ({**DESIGN_EXAMPLE, "action": "delete"}, "action", "'scan', 'dispatch' or 'finish_run'"),
        ({**DESIGN_EXAMPLE, "publish": "yes"}, "publish", "valid boolean"),
        ({**DESIGN_EXAMPLE, "targets": [target(provider="ecs")]}, "targets[0].provider", "'eks'"),
        (
            {**DESIGN_EXAMPLE, "targets": [target(account="12345")]},
            "targets[0].account",
            "12-digit",
        ),
        (
            {"targets": [target(), target(provider="aks", account="not-a-guid")]},
            "targets[1].account",
            "Azure subscription id",
        ),
        (
            {"targets": [{"provider": "gke", "account": "Bad_Project"}]},
            "targets[0].account",
            "Google Cloud project id",
        ),
        ({"targets": [target(cluster="../../etc")]}, "targets[0].cluster", "not a region"),
        ({"targets": [target(zone="a")]}, "targets[0].zone", "unknown field"),
        ({"action": "scan"}, "targets", "a scan names its targets"),
        ({"targets": [target()], "sinks": ["slack"]}, "sinks", "only used with publish"),
    ],
)
def test_a_bad_payload_is_a_400_naming_the_field(payload, field, says):
    with pytest.raises(PayloadError) as caught:
        parse_payload(payload)
    body = caught.value.body()["error"]
    assert (body["status"], body["field"]) == (400, field)
    assert says in body["message"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [("{not json", "not JSON"), ("[1, 2]", "JSON object, not list"), (b"\xff", "not JSON")],
)
def test_a_payload_that_is_not_a_json_object_is_a_400(raw, says):
    with pytest.raises(PayloadError) as caught:
        parse_payload(raw)
    assert caught.value.body()["error"]["field"] == "" and says in caught.value.message


def test_a_dispatch_fans_out_one_scan_per_provider_account_and_region():
    eks = {"provider": "eks", "account": "123456789012"}
    payload = parse_payload(
        {
            "action": "dispatch",
            "publish": True,
            "sinks": ["slack"],
            "targets": [
                {**eks, "region": "eu-west-1", "cluster": "a"},
                {**eks, "region": "eu-west-1", "cluster": "b"},
                {**eks, "region": "us-east-1", "cluster": "c"},
                {**eks, "region": "us-east-1"},  # the whole region: c is in it already
                {"provider": "gke", "account": "shop-prod-1", "region": "europe-west1"},
            ],
        }
    )
    scans = fan_out(payload, Settings())
    assert all(s.action == "scan" and s.publish and s.sinks == ["slack"] for s in scans)
    assert [[t.label for t in s.targets] for s in scans] == [
        ["eks:123456789012:eu-west-1:a", "eks:123456789012:eu-west-1:b"],
        ["eks:123456789012:us-east-1"],
        ["gke:shop-prod-1:europe-west1"],
    ]
    # Each is a message a worker accepts as it is.
    assert all(parse_payload(s.to_message()) == s for s in scans)


def test_a_dispatch_without_targets_uses_the_configured_ones():
    configured = [{"provider": "aks", "account": "0b5f7a3c-2d4e-4f60-8a91-b2c3d4e5f607"}]
    settings = Settings.from_env({"MUTGUARD_TARGETS": json.dumps(configured)})
    (scan,) = fan_out(parse_payload({"action": "dispatch"}), settings)
    assert scan.targets == [Target(**configured[0])]
    with pytest.raises(ConfigurationError, match="MUTGUARD_TARGETS is not set"):
        fan_out(parse_payload({"action": "dispatch"}), Settings())


def test_configured_targets_are_checked_like_a_payload():
    bad = json.dumps([{"provider": "eks", "account": "123"}])
    with pytest.raises(ConfigurationError, match=r"MUTGUARD_TARGETS .*targets\[0\]\.account"):
        Settings.from_env({"MUTGUARD_TARGETS": bad})
    with pytest.raises(ConfigurationError, match="MUTGUARD_TARGETS is not a JSON list"):
        Settings.from_env({"MUTGUARD_TARGETS": "eks:123456789012"})


def test_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "MUTGUARD_REGIONS": "eu-west-1, us-east-1,",
            "MUTGUARD_ROLE_ARN": "arn:aws:iam::{account}:role/mutguard-reader",
            "MUTGUARD_SINKS": "slack,sqs",
            "MUTGUARD_STATE_STORE": " dynamodb:mutguard-state ",
            "MUTGUARD_EXTERNAL_ID": "",
        }
    )
    assert settings.regions == ("eu-west-1", "us-east-1")
    assert settings.sinks == ("slack", "sqs")
    assert settings.state_store == "dynamodb:mutguard-state"
    assert settings.external_id is None


def test_a_target_that_cannot_be_scanned_is_named_and_the_run_goes_on():
    payload = InvokePayload(
        targets=[Target(provider="eks", account="123456789012", region="eu-west-1")],
        include_rbac=False,
    )
    result = run_scan(payload, Settings())  # no MUTGUARD_ROLE_ARN: nothing is called
    assert result.failed_targets == payload.targets
    assert [(e.scope, e.message) for e in result.report.errors] == [
        (
            "eks:123456789012:eu-west-1",
            "MUTGUARD_ROLE_ARN is not set: the role to assume in each account, with {account}",
        )
    ]
    assert result.report.clusters == [] and result.published == []


def test_publishing_with_no_sink_configured_is_a_publish_error_not_a_crash():
    payload = InvokePayload(targets=[Target(provider="eks", account="123456789012")], publish=True)
    result = run_scan(payload, Settings())
    assert result.publish_error == "publish: no sinks named and MUTGUARD_SINKS is not set"
    assert not result.delivered


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        # The fields in their order, each target's in theirs, then the keys that are none of them.
        (
            {"zz": 1, "action": "delete"},
            "action",
            "Input should be 'scan', 'dispatch' or 'finish_run'",
        ),
        ({"targets": [{"zone": "a", "provider": "ecs"}]}, "targets[0].provider", "'eks'"),
        ({"targets": [{"account": "123456789012"}]}, "targets[0].provider", "Field required"),
        ({"targets": [target(), {"provider": "eks"}]}, "targets[1].account", "Field required"),
        ({"targets": [{"provider": "ecs"}] + [target()] * 1000}, "targets", "not 1001"),
        ({"targets": ("x",)}, "targets", "Input should be a valid list"),
        ({"targets": [None]}, "targets[0]", "a valid dictionary or instance of Target"),
        ({"targets": [target(region=5)]}, "targets[0].region", "Input should be a valid string"),
        ({"targets": [target()], "publish": 1}, "publish", "Input should be a valid boolean"),
        ({"targets": [target()], "sinks": ["slack", 1]}, "sinks[1]", "a valid string"),
        ({"targets": [target()], 1: True}, "[1]", "Keys should be strings"),
        ({"targets": [{**target(), None: 1}]}, "targets[0].None", "Keys should be strings"),
    ],
)
def test_the_first_bad_field_is_the_one_named(payload, field, says):
    with pytest.raises(PayloadError) as caught:
        parse_payload(payload)
    assert caught.value.field == field and says in caught.value.message


def test_a_lone_surrogate_is_no_action_nor_key_and_no_message():
    not_text = "Input should be a valid string, unable to parse raw data as a unicode string"
    eks = '"provider": "eks", "account": "123456789012"'
    for raw, field in [
        ('{"action": "\\ud800"}', "action"),
        ('{"targets": [{' + eks + "}], " + '"\\ud800": 1, "action": "delete"}', ""),
        ('{"targets": [{"\\ud800": 1, "provider": "ecs"}]}', "targets[0]"),
    ]:
        with pytest.raises(PayloadError) as caught:
            parse_payload(raw)
        assert (caught.value.field, caught.value.message) == (field, not_text)
    sink = parse_payload('{"action": "dispatch", "publish": true, "sinks": ["\\ud800"]}')
    with pytest.raises(ValueError):
        sink.to_message()


def test_a_string_enum_member_is_kept_as_its_string():
    class Action(enum.StrEnum):
        DISPATCH = "dispatch"

    class Provider(enum.StrEnum):
        GKE = "gke"

    payload = parse_payload(
        {
            "action": Action.DISPATCH,
            "targets": [{"provider": Provider.GKE, "account": "shop-prod-1"}],
        }
    )
    assert type(payload.action) is str and type(payload.targets[0].provider) is str
    assert payload.targets[0].label == "gke:shop-prod-1"


def test_a_message_leaves_out_what_is_at_its_default():
    payload = parse_payload(
        {
            "action": "dispatch",
            "targets": [{"provider": "gke", "account": "shop-prod-1", "region": None}],
            "publish": True,
            "sinks": ["släck"],
            "include_rbac": True,
            "digest": False,
        }
    )
    assert payload.to_message() == (
        '{"action":"dispatch","targets":[{"provider":"gke","account":"shop-prod-1"}],'
        '"publish":true,"sinks":["släck"]}'
    )
    assert parse_payload({"action": "dispatch"}).to_message() == '{"action":"dispatch"}'
    assert parse_payload({"targets": [target()]}).to_message() == (
        '{"targets":[{"provider":"eks","account":"123456789012","region":"eu-west-1",'
        '"cluster":"prod"}]}'
    )


def test_a_target_checks_itself_wherever_it_is_made():
    with pytest.raises(ValueError, match="not a 12-digit AWS account id"):
        Target(provider="eks", account="123")
    with pytest.raises(ValueError, match="not a region or cluster name"):
        Target(provider="eks", account="123456789012", region="eu-west-1/x")


def test_a_dispatcher_may_give_a_payload_more_targets_than_a_sender_may_name():
    accounts = [f"{n:012d}" for n in range(MAX_TARGETS + 1)]
    organization = [Target(provider="eks", account=account) for account in accounts]
    payload = replace(parse_payload({"action": "dispatch"}), targets=organization)
    assert [scan.targets for scan in fan_out(payload, Settings())] == [[t] for t in organization]
