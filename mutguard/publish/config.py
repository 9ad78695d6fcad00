"""Which sinks a run publishes to: the `sinks:` YAML document and names picked from it.

    sinks:
      - kind: slack                       # name defaults to the kind
      - kind: smtp
        options: {host: smtp.example.com, sender: mutguard@example.com,
                  recipients: [secops@example.com], username: mutguard}

A selected name picks the entry with that name (or kind); a kind with no entry gets its defaults,
which read secrets from the environment (e.g. MUTGUARD_SLACK_WEBHOOK_URL). An option naming a
secret may instead point into a secret store, e.g. `url_env: aws-secretsmanager:prod/hook`
(secrets.SecretRefs). The command line reads the document from --publish-config, a deployed
function from MUTGUARD_SINKS_CONFIG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mutguard.errors import InputError
from mutguard.files import read_yaml
from mutguard.publish.pipeline import SinkSpec


def select_sinks(selected: Sequence[str], configured: Sequence[SinkSpec]) -> list[SinkSpec]:
    """The configured entry of each selected name (or kind), else that kind with its defaults."""
    by_label = {spec.label: spec for spec in configured}
    return [by_label.get(name) or SinkSpec(kind=name) for name in selected]


def parse_sink_config(text: str, origin: str) -> list[SinkSpec]:
    """The `sinks:` entries of a YAML document; InputError names `origin` and the bad entry."""
    document = read_yaml(text, origin) or {}
    entries = document.get("sinks") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InputError(f"{origin}: expected a `sinks:` list")
    return [_sink_spec(entry, f"{origin}: sinks[{index}]") for index, entry in enumerate(entries)]


def _sink_spec(entry: Any, label: str) -> SinkSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
        raise InputError(f"{label} needs a `kind` (a string)")
    label += f" ({entry['kind']})"
    if unknown := set(entry) - {"kind", "name", "options"}:
        raise InputError(f"{label} has unknown keys {sorted(unknown, key=str)}")
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise InputError(f"{label}: `name` must be a string, not {type(name).__name__}")
    options = entry.get("options")
    options = {} if options is None else options  # `options:` left empty
    if not isinstance(options, Mapping):
        raise InputError(f"{label}: `options` must be a mapping, not {type(options).__name__}")
    return SinkSpec(entry["kind"], name, options)
