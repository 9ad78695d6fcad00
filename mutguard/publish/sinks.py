"""The sinks, by kind: each kind's module has `build(name, options, context) -> Sink`.

Adding a sink is its module plus one line here; this module stays light (no sink, no SDK and no
report model loads with it), so the command line can list the kinds in its help.
"""

from __future__ import annotations

from types import ModuleType

from mutguard.registry import Registry

# Another distribution adds a sink kind with an entry point in the `mutguard.sinks` group.
SINKS: Registry[ModuleType] = Registry("sink", "mutguard.sinks")
SINKS.add(
    "slack", "mutguard.publish.slack", extra="notify", imports_later={"slack_sdk": "slack-sdk"}
)
SINKS.add("teams", "mutguard.publish.teams")
SINKS.add("smtp", "mutguard.publish.smtp")
SINKS.add("webhook", "mutguard.publish.webhook")
SINKS.add("sqs", "mutguard.publish.sqs", extra="aws", imports_later={"boto3": "boto3"})
SINKS.add("sns", "mutguard.publish.sns", extra="aws", imports_later={"boto3": "boto3"})
SINKS.add("ses", "mutguard.publish.ses", extra="aws", imports_later={"boto3": "boto3"})
SINKS.add(
    "securityhub", "mutguard.publish.securityhub", extra="aws", imports_later={"boto3": "boto3"}
)
SINKS.add(
    "pubsub",
    "mutguard.publish.pubsub",
    extra="notify-gcp",
    imports_later={"google.cloud.pubsub_v1": "google-cloud-pubsub"},
)
SINKS.add(
    "scc",
    "mutguard.publish.scc",
    extra="notify-gcp",
    imports_later={"google.cloud.securitycenter_v2": "google-cloud-securitycenter"},
)
SINKS.add(
    "azure-queue",
    "mutguard.publish.azure_queue",
    extra="notify-azure",
    imports_later={"azure.storage.queue": "azure-storage-queue"},
)
