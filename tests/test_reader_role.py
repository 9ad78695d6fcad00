"""deploy/mutguard-reader.yaml grants what the in-cluster reader lists, and nothing dangerous."""

from pathlib import Path

import yaml

from mutguard.providers.eks_live import AWS_AUTH_PATH
from mutguard.providers.in_cluster import DOCUMENTS
from mutguard.rbac import RbacPolicy, powers

ROLE_FILE = Path(__file__).parents[1] / "deploy" / "mutguard-reader.yaml"


def reader_policy() -> RbacPolicy:
    return RbacPolicy.from_kubectl({"items": list(yaml.safe_load_all(ROLE_FILE.read_text()))})


def rules_of(name):
    policy = reader_policy()
    (binding,) = [b for b in policy.bindings if b.name == name]
    assert [s.name for s in binding.subjects] == ["mutguard-readers"]
    return policy.rules_of(binding)


def test_the_cluster_role_allows_every_list_the_reader_makes():
    rules = rules_of("mutguard-reader")
    for sources in DOCUMENTS.values():
        for _, api_version, path in sources:
            group = api_version.rpartition("/")[0]
            resource = path.rsplit("/", 1)[1]
            assert any(rule.allows("list", group, resource) for rule in rules), path


def test_the_aws_auth_role_reads_that_one_config_map():
    (rule,) = rules_of("mutguard-aws-auth-reader")
    assert AWS_AUTH_PATH.endswith("/namespaces/kube-system/configmaps/aws-auth")
    assert rule.allows_named("get", "", "configmaps") and rule.resource_names == {"aws-auth"}
    assert not rule.allows("get", "", "configmaps")  # not every ConfigMap


def test_the_roles_are_harmless():
    policy = reader_policy()
    for binding in policy.bindings:
        rules = policy.rules_of(binding)
        namespace = None if binding.cluster_wide else binding.namespace
        assert powers(rules, namespace) == []
        reads_secrets = (r.allows_named(v, "", "secrets") for r in rules for v in ("get", "list"))
        assert not any(reads_secrets)
        assert all(rule.verbs <= {"get", "list"} for rule in rules)
