"""The sinks, by kind: each kind's module has `build(name, options, context) -> Sink`.

Adding a sink is its module plus one line here; this module stays light (no sink, no SDK and no
report model loads with it), so the command line can list the kinds in its help.
"""

from __future__ import annotations

from types import ModuleType

from mutguard.plugins import AZURE_QUEUE, BOTO3, GOOGLE_PUBSUB, GOOGLE_SECURITY_CENTER, SLACK_SDK
from mutguard.registry import Registry

# Another distribution adds a sink kind with an entry point in the `mutguard.sinks` group.
SINKS: Registry[ModuleType] = Registry("sink", "mutguard.sinks")
SINKS.add("slack", "mutguard.publish.sinks.slack", needs=SLACK_SDK)
SINKS.add("teams", "mutguard.publish.sinks.teams")
SINKS.add("smtp", "mutguard.publish.sinks.smtp")
SINKS.add("webhook", "mutguard.publish.sinks.webhook")
SINKS.add("sqs", "mutguard.publish.sinks.sqs", needs=BOTO3)
SINKS.add("sns", "mutguard.publish.sinks.sns", needs=BOTO3)
SINKS.add("ses", "mutguard.publish.sinks.ses", needs=BOTO3)
SINKS.add("securityhub", "mutguard.publish.sinks.securityhub", needs=BOTO3)
SINKS.add("pubsub", "mutguard.publish.sinks.pubsub", needs=GOOGLE_PUBSUB)
SINKS.add("scc", "mutguard.publish.sinks.scc", needs=GOOGLE_SECURITY_CENTER)
SINKS.add("azure-queue", "mutguard.publish.sinks.azure_queue", needs=AZURE_QUEUE)
