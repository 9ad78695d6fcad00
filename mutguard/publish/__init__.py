"""Publishing and alerting: tell the right people once, and again when things change.

The registries below and a scheduled run's flow are in docs/architecture.md (Plug-in registries,
Scheduled runs).

Four folders, one per kind of plug-in, each an `__init__.py` holding its registry and the
shared code of its kind, and one module per plug-in:
- sinks/: SINKS (light enough for the command line's help); slack.py, teams.py, smtp.py,
  ses.py, webhook.py (people and receivers); sqs.py, sns.py, pubsub.py, azure_queue.py (queues
  and topics); securityhub.py, scc.py (the clouds' security hubs).
- stores/: where the memory between runs is kept (STATE_STORES): sqlite.py (the default),
  dynamodb.py, gcs.py, azure_table.py; each also keeps the suppressions document, the claims
  and the scheduled runs' parts.
- secrets/: where secrets come from (SECRET_SOURCES: the environment, aws_secrets.py,
  gcp_secrets.py) and how they stay out of logs (Redactor).
- reports/: where the functions keep each report (REPORT_ARCHIVES: s3.py, gcs.py,
  azure_blob.py) and the links the alerts carry.
Beside them, what every kind shares:
- pipeline.py: sinks chosen by configuration, `publish()`, `notify()` and
  `run_publishing()`, the one run of the command line and the functions alike.
- base.py: the sink contract; config.py: the `sinks:` YAML document and the sinks a run picks.
- messages.py: the machine-readable message (one cluster's versioned report, split to fit;
  schemas/message.schema.json describes it); text.py: the words of the people's sinks.
- fleet.py: a scheduled run's fleet digest, sent once when its last part finishes.
- retry.py: bounded backoff with jitter, Retry-After, pacing; aws.py, google_errors.py,
  azure_storage.py, httppost.py: each cloud's or protocol's calls and failures, in one place.
mutguard/state.py holds what is remembered between runs, mutguard/store.py the store protocol;
mutguard/suppressions.py the accepted risks.

No sink's, store's or secret source's client library is imported until it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use (PEP 562): `mutguard.publish.retry` alone, as a dispatcher function needs
# it, must not pull in the report models that pipeline.py and base.py import.
_EXPORTS = {
    "mutguard.errors": ("ConfigurationError",),
    "mutguard.publish.base": (
        "Notice",
        "Outgoing",
        "Sink",
        "SinkContext",
        "SinkResult",
    ),
    "mutguard.publish.pipeline": (
        "PublishError",
        "RunOutcome",
        "SinkSpec",
        "build_sinks",
        "notify",
        "publish",
        "run_publishing",
    ),
    "mutguard.publish.retry": ("RetryPolicy",),
    "mutguard.publish.sinks": ("SINKS",),
    "mutguard.publish.secrets": (
        "EnvSecrets",
        "MissingSecret",
        "Redactor",
        "SecretRefs",
        "SecretSource",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_MODULE_OF)
