"""Publishing and alerting (issue 6): tell the right people once, and again when things change.

- messages.py: the machine-readable message (one cluster's versioned report, split to fit;
  schemas/message.schema.json describes it).
- dispatch.py: sinks chosen by configuration (SINK_MODULES), `publish()` and `notify()`.
- One module per sink, behind base.Sink: slack.py, teams.py, smtp.py, ses.py, webhook.py (people
  and receivers); sqs.py, sns.py, pubsub.py, azure_queue.py (queues and topics).
- stores.py: where the memory between runs is kept (STATE_STORES): SQLite (mutguard.state),
  dynamodb.py, gcs.py, azure_table.py; each also keeps the suppressions document.
- secrets.py: where secrets come from (SECRET_SOURCES: the environment, aws_secrets.py,
  gcp_secrets.py) and how they stay out of logs (Redactor).
- retry.py: bounded backoff with jitter, Retry-After, pacing.
mutguard/state.py holds what is remembered between runs and the suppressions.

No sink's, store's or secret source's client library is imported until it is used.
"""

from mutguard.publish.base import ConfigError, Notice, Outgoing, Sink, SinkContext, SinkResult
from mutguard.publish.dispatch import (
    SINK_MODULES,
    RunOutcome,
    SinkSpec,
    build_sinks,
    notify,
    publish,
)
from mutguard.publish.retry import RetryPolicy
from mutguard.publish.secrets import EnvSecrets, MissingSecret, Redactor, SecretRefs, SecretSource

__all__ = [
    "SINK_MODULES",
    "ConfigError",
    "EnvSecrets",
    "MissingSecret",
    "Notice",
    "Outgoing",
    "Redactor",
    "RetryPolicy",
    "RunOutcome",
    "SecretRefs",
    "SecretSource",
    "Sink",
    "SinkContext",
    "SinkResult",
    "SinkSpec",
    "build_sinks",
    "notify",
    "publish",
]
