"""The sinks, by kind: each kind's module has `build(name, options, context) -> Sink`.

Adding a sink is its module plus one line here; this module stays light (no sink, no SDK and no
report model loads with it), so the command line can list the kinds in its help.
"""

from __future__ import annotations

from mutguard.plugins import Plugin

SINK_MODULES = {
    "slack": Plugin("mutguard.publish.slack", "notify", imports_later={"slack_sdk": "slack-sdk"}),
    "teams": Plugin("mutguard.publish.teams"),
    "smtp": Plugin("mutguard.publish.smtp"),
    "webhook": Plugin("mutguard.publish.webhook"),
    "sqs": Plugin("mutguard.publish.sqs", "aws", imports_later={"boto3": "boto3"}),
    "sns": Plugin("mutguard.publish.sns", "aws", imports_later={"boto3": "boto3"}),
    "ses": Plugin("mutguard.publish.ses", "aws", imports_later={"boto3": "boto3"}),
    "securityhub": Plugin("mutguard.publish.securityhub", "aws", imports_later={"boto3": "boto3"}),
    "pubsub": Plugin(
        "mutguard.publish.pubsub",
        "notify-gcp",
        imports_later={"google.cloud.pubsub_v1": "google-cloud-pubsub"},
    ),
    "scc": Plugin(
        "mutguard.publish.scc",
        "notify-gcp",
        imports_later={"google.cloud.securitycenter_v2": "google-cloud-securitycenter"},
    ),
    "azure-queue": Plugin(
        "mutguard.publish.azure_queue",
        "notify-azure",
        imports_later={"azure.storage.queue": "azure-storage-queue"},
    ),
}
