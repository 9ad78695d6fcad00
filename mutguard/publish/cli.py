"""The command line's side of publishing: which sinks, from flags and an optional YAML file.

    sinks:
      - kind: slack                       # name defaults to the kind
      - kind: smtp
        options: {host: smtp.example.com, sender: mutguard@example.com,
                  recipients: [secops@example.com], username: mutguard}

`--publish slack,smtp` picks entries by name (or kind); a kind with no entry gets its defaults,
which read secrets from the environment (e.g. MUTGUARD_SLACK_WEBHOOK_URL). An option naming a
secret may instead point into a secret store, e.g. `url_env: aws-secretsmanager:prod/hook`
(secrets.SecretRefs).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mutguard.errors import InputError
from mutguard.models import Report
from mutguard.publish import Redactor, SecretRefs, SinkContext, SinkSpec, build_sinks, notify
from mutguard.publish.base import ConfigError
from mutguard.state import read_text_file, read_yaml


def sink_specs(selected: Sequence[str], config: Path | None) -> list[SinkSpec]:
    configured = parse_sink_config(read_text_file(config), str(config)) if config else []
    return select_sinks(selected, configured)


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


def check_publishing(selected: Sequence[str], args: Any) -> None:
    """Fail before anything is scanned when publishing could not start: a bad --publish-config,
    an unknown sink or store, or one whose dependencies are not installed."""
    from mutguard.publish.dispatch import sink_module
    from mutguard.publish.stores import store_module, store_spec

    try:
        for spec in sink_specs(selected, args.publish_config):
            sink_module(spec)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    store_module(store_spec(args.state_store, args.state))


def publish_report(report: Report, selected: Sequence[str], args: Any, out=sys.stdout) -> bool:
    """Send what changed (or the digest) to the selected sinks; True when every sink delivered.

    Each sink's outcome goes to stderr; with --dry-run the messages are written to `out`."""
    from mutguard.errors import StoreError
    from mutguard.publish.stores import open_store, store_spec
    from mutguard.state import load_suppressions, stored_suppressions

    redactor = Redactor()
    context = SinkContext(SecretRefs(redactor), redactor)
    try:
        sinks = build_sinks(sink_specs(selected, args.publish_config), context)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    try:
        store = open_store(store_spec(args.state_store, args.state))
        if args.suppressions:
            suppressions = load_suppressions(args.suppressions)
        else:
            suppressions = stored_suppressions(store)
        outcome = notify(
            report,
            store,
            sinks,
            context,
            suppressions=suppressions,
            digest=args.digest,
            dry_run=args.dry_run,
        )
    except StoreError as exc:  # nothing is known to be sent, or it was and cannot be remembered
        print(f"mutguard: {exc}", file=sys.stderr)
        return False
    if left := len(outcome.left_to_another_run):
        print(f"publish: {left} cluster(s) left to another run of this report", file=sys.stderr)
    for result in outcome.results:
        status = "would send" if result.dry_run else ("sent" if result.ok else "FAILED")
        count = result.planned if result.dry_run else result.sent
        line = f"publish {result.sink}: {status} {count} message(s)"
        print(line + (f": {result.error}" if result.error else ""), file=sys.stderr)
        if result.dry_run:
            for item in result.outgoing:
                out.write(
                    json.dumps(
                        {"sink": result.sink, "summary": item.summary, "payload": item.payload},
                        default=str,
                    )
                    + "\n"
                )
    return outcome.ok
