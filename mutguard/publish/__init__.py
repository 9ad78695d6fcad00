"""Publishing and alerting (issue 6): tell the right people once, and again when things change.

- messages.py: the machine-readable message (one cluster's versioned report, split to fit).
- dispatch.py: sinks chosen by configuration (SINK_MODULES), `publish()` and `notify()`.
- slack.py, teams.py, smtp.py, webhook.py: one sink each, behind base.Sink.
- secrets.py: where secrets come from (SecretSource) and how they stay out of logs (Redactor).
- retry.py: bounded backoff with jitter, Retry-After, pacing.
mutguard/state.py holds what is remembered between runs and the suppressions.

No sink's client library is imported until that sink delivers.
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
