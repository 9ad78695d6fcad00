"""Literal credentials in env values, found by name and by shape, and never repeated."""

import random
import string

import pytest

from mutguard.models import Report, Status
from mutguard.render import render
from mutguard.workloads import literal_secret, shannon_entropy

from builders import OBSERVED_AT, assess, describe_cluster, finding, kube_list, pod

# Made-up credentials, built so that no real-looking secret sits in the source.
_random = random.Random(7)  # noqa: S311 - a fixed made-up string, not a key
RANDOM_40 = "".join(_random.choice(string.ascii_letters + string.digits) for _ in range(40))
RANDOM_31 = RANDOM_40[:31]
AWS_KEY_ID = "AKIA" + "EXAMPLE0EXAMPLE0"
AWS_TEMPORARY_KEY_ID = "ASIA" + "Q7X2EXAMPLE9KEYZ"
JWT = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiJhcHAifQ." + "c2lnbmF0dXJl"
PEM = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----"
GITHUB_PAT = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"
GITHUB_FINE_GRAINED = "github_pat_" + "11ABCDEFG0" * 3
SLACK_BOT = "xoxb-" + "1234567890-abcdefghij"
SLACK_WEBHOOK = "https://hooks.slack.com/services/" + "T0000/B0000/XXXXXXXX"
GITLAB_PAT = "glpat-" + "z_sxgtrfAxKr8q1TPY8Y"
STRIPE_LIVE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE_KEY = "AIza" + "SyA-example_example-example_example12"[:35]

# (name, value, flagged); each expectation follows from whether the value is a credential.
CASES = [
    ("DB_PASSWORD", "hunter2-very-secret", True),  # a password by name
    ("DB_PASSWORD", "changeme", True),  # a placeholder password is still a literal password
    ("PGPASSWORD", "postgres", True),  # libpq's variable: ends in PASSWORD
    ("REDIS_PASS", "s3cr3t", True),
    ("dbPassword", "s3cr3t", True),  # camelCase is DB_PASSWORD
    ("API_KEY", "k-12345", True),
    ("PAYMENT_PROVIDER_API_KEY", "demo-not-a-real-key-7f3a9c", True),
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
    ("CLIENT_SECRET", "abc", True),
    ("GITHUB_TOKEN", "anything", True),
    ("REDIS_AUTH", "s3cr3t", True),  # AUTH as the last word is the credential
    ("AWS_ACCESS_KEY_ID", AWS_KEY_ID, True),  # an identifier by name, an access key by shape
    ("UPSTREAM", AWS_TEMPORARY_KEY_ID, True),
    ("SESSION", JWT, True),
    ("TLS_MATERIAL", PEM, True),
    ("GH", GITHUB_PAT, True),
    ("GH_FINE", GITHUB_FINE_GRAINED, True),
    ("NOTIFY", SLACK_BOT, True),
    ("ALERTS_WEBHOOK_URL", SLACK_WEBHOOK, True),  # a URL by name, a credential by shape
    ("GL", GITLAB_PAT, True),
    ("PAYMENTS", STRIPE_LIVE, True),
    ("MAPS", GOOGLE_KEY, True),
    ("DATABASE_URL", "postgres://app:hunter2@db:5432/app", True),  # a password in the URL
    ("SEED", RANDOM_40, True),  # 40 random characters: above the entropy threshold
    ("SEED", RANDOM_31, False),  # too short to judge by entropy, and not a secret's name
    ("CLASS", "ApplicationInsightsConnectionString01", False),  # long, but words: low entropy
    ("KEYCLOAK_URL", "https://sso.example.com", False),  # KEYCLOAK is not KEY
    ("CACHE_KEY", "orders", False),  # a key that is not a credential
    ("TOKEN_PATH", "/var/run/secrets/token", False),  # names where the secret is: not it
    ("PASSWORD_FILE", "/etc/app/password", False),
    ("SECRETS_DIR", "/secrets", False),
    ("TOKEN_TTL", "3600", False),
    ("PASSWORD_REQUIRED", "true", False),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/var/secrets/google/key.json", False),  # a file path
    ("DB_PASSWORD", "", False),  # nothing to leak
    ("DB_PASSWORD", "$(DB_PASSWORD_FROM_SECRET)", False),  # a reference the kubelet expands
    ("DB_PASSWORD", "${DB_PASSWORD}", False),  # a placeholder the app expands
    ("DATABASE_URL", "postgres://app:$(DB_PASSWORD)@db/app", False),
    ("DB_HOST", "payments.cluster-c1x2y3z4.eu-west-1.rds.amazonaws.com", False),
    ("REQUEST_ID", "6f1c7a5e-3b2d-4e8f-9a1b-2c3d4e5f6a7b", False),  # a UUID: hex, low entropy
    ("LOG_LEVEL", "debug", False),
]


@pytest.mark.parametrize(("name", "value", "flagged"), CASES)
def test_literal_secrets(name, value, flagged):
    assert (literal_secret(name, value) is not None) is flagged


def test_entropy_threshold_on_both_sides():
    assert shannon_entropy(RANDOM_40) >= 4.2
    assert shannon_entropy("ApplicationInsightsConnectionString01") < 4.2
    assert shannon_entropy("aaaa") == 0


SECRETS = [(name, value) for name, value, flagged in CASES if flagged]


def test_every_container_and_template_is_read_and_no_value_is_reported():
    def env(*pairs):
        return [{"name": n, "value": v} for n, v in pairs]

    web = pod(
        "web",
        containers=[
            {
                "name": "app",
                "env": [
                    *env(("DB_PASSWORD", "hunter2-very-secret"), ("LOG_LEVEL", "debug")),
                    {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}},
                ],
                "envFrom": [{"secretRef": {"name": "app-secrets"}}],
            }
        ],
        initContainers=[{"name": "migrate", "env": env(("UPSTREAM", AWS_KEY_ID))}],
        ephemeralContainers=[{"name": "debug", "env": env(("GH", GITHUB_PAT))}],
    )
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "report", "namespace": "shop"},
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "job",
                                    "env": env(*SECRETS),
                                }
                            ]
                        }
                    }
                }
            }
        },
    }
    cluster = assess(describe_cluster(), workloads=kube_list(web, cron))
    found = {f.resource: f for f in cluster.findings if f.check_id == "workloads.secret_env"}
    assert found["Pod shop/web"].status is Status.FAIL
    assert found["Pod shop/web"].detail == (
        "Pod shop/web sets literal secrets in migrate:UPSTREAM (value shaped like an AWS access "
        "key id), app:DB_PASSWORD (a credential by its name), debug:GH (value shaped like a "
        "GitHub token)"
    )
    assert len(found["CronJob shop/report"].detail.split(", job:")) == len(SECRETS)
    report = Report(generated_at=OBSERVED_AT, clusters=[cluster])
    outputs = [report.model_dump_json(), render(report, "table"), render(report, "markdown")]
    # Values of six characters or more: shorter ones ("abc") occur in ordinary words.
    for value in [v for _, v in SECRETS if len(v) >= 6] + ["hunter2"]:
        for output in outputs:
            assert value not in output


def test_no_literal_secret_passes():
    report = assess(describe_cluster(), workloads=kube_list(pod("web")))
    assert finding(report, "workloads.secret_env").status is Status.PASS
