"""deploy/mutguard-reader.yaml grants what the in-cluster reader lists, and nothing dangerous."""

from pathlib import Path

import yaml

from mutguard.providers.kube import DOCUMENTS
from mutguard.rbac import RbacPolicy, powers

ROLE_FILE = Path(__file__).parents[1] / "deploy" / "mutguard-reader.yaml"


def reader_rules():
    policy = RbacPolicy.from_kubectl({"items": list(yaml.safe_load_all(ROLE_FILE.read_text()))})
    (binding,) = policy.bindings
    return policy.rules_of(binding)


def test_the_role_allows_every_list_the_reader_makes():
    rules = reader_rules()
    for sources in DOCUMENTS.values():
        for _, api_version, path in sources:
            group = api_version.rpartition("/")[0]
            resource = path.rsplit("/", 1)[1]
            assert any(rule.allows("list", group, resource) for rule in rules), path


def test_the_role_is_harmless():
    rules = reader_rules()
    assert powers(rules) == []
    assert not any(
        rule.allows_named(verb, "", "secrets") for rule in rules for verb in ("get", "list")
    )
    assert all(rule.verbs <= {"get", "list"} for rule in rules)
