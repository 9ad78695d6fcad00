"""The command line's side of publishing: `--publish slack,smtp` picks sinks from
--publish-config (mutguard.publish.config), and the outcome is told on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mutguard.errors import InputError
from mutguard.files import read_text_file
from mutguard.models import Report
from mutguard.publish.config import parse_sink_config, select_sinks
from mutguard.publish.pipeline import PublishError, SinkSpec, run_publishing


def sink_specs(selected: Sequence[str], config: Path | None) -> list[SinkSpec]:
    configured = parse_sink_config(read_text_file(config), str(config)) if config else []
    return select_sinks(selected, configured)


def check_publishing(selected: Sequence[str], args: Any) -> None:
    """Fail before anything is scanned when publishing could not start: a bad --publish-config,
    an unknown sink or store, or one whose dependencies are not installed."""
    from mutguard.publish.pipeline import sink_module
    from mutguard.publish.stores import store_module, store_spec

    for spec in sink_specs(selected, args.publish_config):
        sink_module(spec)  # a ConfigurationError is an InputError: exit 2
    store_module(store_spec(args.state_store, args.state))


def publish_report(report: Report, selected: Sequence[str], args: Any, out=sys.stdout) -> bool:
    """Send what changed (or the digest) to the selected sinks; True when every sink delivered.

    Each sink's outcome goes to stderr; with --dry-run the messages are written to `out`. A bad
    configuration is an InputError (exit 2); a state store that fails is said here and makes
    the run undelivered."""
    from mutguard.publish.stores import open_store, store_spec
    from mutguard.suppressions import load_suppressions

    specs = sink_specs(selected, args.publish_config)
    suppressions = load_suppressions(args.suppressions) if args.suppressions else None
    spec = store_spec(args.state_store, args.state)
    try:
        outcome = run_publishing(
            report,
            specs,
            lambda: open_store(spec),
            suppressions=suppressions,
            digest=args.digest,
            dry_run=args.dry_run,
        )
    except PublishError as exc:
        if not exc.store:
            raise InputError(str(exc)) from None
        # Nothing is known to be sent, or it was and cannot be remembered.
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
