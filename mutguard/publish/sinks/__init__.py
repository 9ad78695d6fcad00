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
    "slack",
    "mutguard.publish.sinks.slack",
    extra="notify",
    imports_later={"slack_sdk": "slack-sdk"},
)
SINKS.add("teams", "mutguard.publish.sinks.teams")
SINKS.add("smtp", "mutguard.publish.sinks.smtp")
SINKS.add("webhook", "mutguard.publish.sinks.webhook")
SINKS.add("sqs", "mutguard.publish.sinks.sqs", extra="aws", imports_later={"boto3": "boto3"})
SINKS.add("sns", "mutguard.publish.sinks.sns", extra="aws", imports_later={"boto3": "boto3"})
SINKS.add("ses", "mutguard.publish.sinks.ses", extra="aws", imports_later={"boto3": "boto3"})
SINKS.add(
    "securityhub",
    "mutguard.publish.sinks.securityhub",
    extra="aws",
    imports_later={"boto3": "boto3"},
)
SINKS.add(
    "pubsub",
    "mutguard.publish.sinks.pubsub",
    extra="notify-gcp",
    imports_later={"google.cloud.pubsub_v1": "google-cloud-pubsub"},
)
SINKS.add(
    "scc",
    "mutguard.publish.sinks.scc",
    extra="notify-gcp",
    imports_later={"google.cloud.securitycenter_v2": "google-cloud-securitycenter"},
)
SINKS.add(
    "azure-queue",
    "mutguard.publish.sinks.azure_queue",
    extra="notify-azure",
    imports_later={"azure.storage.queue": "azure-storage-queue"},
)
