"""The `mutguard` command line; EXIT_CODES says what each exit code means.

Heavy modules are imported inside the commands so that `mutguard --help` starts fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mutguard import __version__, clock
from mutguard.provider_api import ProviderPlugin, comma_separated
from mutguard.providers import PROVIDERS
from mutguard.publish.sinks import SINKS
from mutguard.render import FORMATS

if TYPE_CHECKING:
    from mutguard.models import Report

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_PARTIAL, EXIT_UNDELIVERED, EXIT_UNREAD = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
EXIT_CODES = {
    EXIT_OK: "scanned; no gate tripped",
    EXIT_GATE: "a gate tripped: --fail-on SEVERITY or --max-mut N",
    EXIT_USAGE: "usage or input error, or a missing optional dependency; nothing was scanned",
    EXIT_PARTIAL: "scanned, but some account, region or cluster could not be read (named in "
    "the report)",
    EXIT_UNDELIVERED: "a publishing sink could not deliver (the others did), or the state store "
    "could not be read or written (run again: nothing is forgotten)",
    EXIT_UNREAD: "no cluster could be read at all (credentials, permissions, network); the "
    "reasons are on stderr",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C) before the end: no report written, nothing published, "
    "no state saved",
}
# Loggers of the SDKs mutguard drives: quiet unless -v (DefaultAzureCredential alone logs a dozen
# lines when one of its credential kinds is not configured). py.warnings: the SDKs' Python
# warnings (google-api-core warns of Python versions it will stop supporting, by date).
SDK_LOGGERS = ("azure", "google", "botocore", "boto3", "urllib3", "msal", "grpc", "py.warnings")
STDIO = "-"
SEVERITIES = ("critical", "high", "medium", "low", "info")

log = logging.getLogger("mutguard")


class _ProviderNames:
    """The provider names an option takes, as argparse `choices`: asked of the registry only when
    a value is checked or the choices are listed, so that building the parser searches no
    installed distribution for plug-ins (`mutguard --help` stays fast)."""

    def __init__(self, live: bool) -> None:
        self.live = live  # only those `--provider NAME` reads live

    def _takes(self, plugin: ProviderPlugin) -> bool:
        cli = plugin.command_line
        return not self.live or (cli is not None and cli.source is None)

    def __contains__(self, name: object) -> bool:
        return name in PROVIDERS and self._takes(PROVIDERS.get(str(name)))

    def __iter__(self) -> Iterator[str]:
        return (name for p in PROVIDERS.entries() if self._takes(p) for name in p.names)


def _add_live_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="API calls at a time: for AWS per account and region, each region halving its own "
        "while it throttles and growing it back as it answers; for GCP, Azure and kubeconfig "
        "contexts in all (default 16)",
    )
    parser.add_argument(
        "--clusters",
        type=comma_separated,
        default=(),
        help="comma-separated cluster names; default: every cluster found",
    )
    parser.add_argument(
        "--locations",
        type=comma_separated,
        default=(),
        help="GCP regions/zones or Azure regions (AWS: --regions); default: all",
    )
    parser.add_argument(
        "--skip-in-cluster",
        action="store_true",
        help="read only the cloud's control-plane settings, not RBAC and workloads",
    )
    parser.add_argument(
        "--region-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="stop waiting for an AWS region (GCP project, Azure subscription) whose cloud API "
        "leaves one read unanswered for SECONDS, and report it as an error (default 60)",
    )
    for plugin in PROVIDERS.entries(search_installed=False):
        if plugin.command_line is not None and plugin.command_line.add_options is not None:
            plugin.command_line.add_options(parser)


def _add_live_sources(group: argparse._MutuallyExclusiveGroup) -> None:
    """The live sources; each excludes the others (and --snapshot where it is offered)."""
    group.add_argument(
        "--provider",
        choices=_ProviderNames(live=True),
        metavar="NAME",
        help="scan the live cloud: %(choices)s",
    )
    for plugin in PROVIDERS.entries(search_installed=False):
        source = plugin.command_line.source if plugin.command_line else None
        if source is not None:
            group.add_argument(
                source.flag, type=source.type, metavar=source.metavar, help=source.help
            )


def _as_of(text: str) -> datetime:
    try:
        return clock.parse_as_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_clock_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of",
        type=_as_of,
        metavar="DATE",
        help="judge dates (version support, suppression expiry) as of this day (YYYY-MM-DD) or "
        "ISO 8601 time instead of now: reproducible scans of old snapshots",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        type=_format,
        default="table",
        metavar="FORMAT",
        help="; ".join(f"{name}: {summary}" for name, summary in FORMATS.summaries().items()),
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write the report to FILE ('-': stdout)"
    )
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        help="exit 1 if any FAIL finding has this severity or worse",
    )
    parser.add_argument(
        "--max-mut",
        type=int,
        metavar="N",
        help="exit 1 if any cluster's lowest MUT (internet, workload or credential) is N or less",
    )


def _format(name: str) -> str:
    """A format's name, checked before anything is scanned (a format plug-in's too)."""
    if name not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown format {name!r}: choose one of {', '.join(FORMATS.names())}"
        )
    return name


def _add_publish_options(parser: argparse.ArgumentParser, flag: str) -> None:
    group = parser.add_argument_group("publishing")
    group.add_argument(
        flag,
        type=comma_separated,
        default=(),
        metavar="SINKS",
        dest="publish",
        required=flag == "--to",
        help=f"comma-separated sinks: {', '.join(SINKS.summaries())} (or names from "
        "--publish-config)",
    )
    group.add_argument("--publish-config", type=Path, metavar="FILE", help="YAML list of sinks")
    _add_store_options(group)
    group.add_argument(
        "--suppressions",
        type=Path,
        metavar="FILE",
        help="YAML suppressions with owner, reason and expiry (default: those kept in the "
        "state store by `mutguard suppressions push`)",
    )
    group.add_argument(
        "--digest",
        action="store_true",
        help="one summary of every cluster instead of alerts on changes",
    )
    group.add_argument("--dry-run", action="store_true", help="show what would be sent")


def _add_store_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="what the last run said (default: $MUTGUARD_STATE_FILE or the user's state directory)",
    )
    group.add_argument(
        "--state-store",
        metavar="KIND[:LOCATION]",
        help="where the state is kept: sqlite[:FILE] (default), dynamodb:TABLE, "
        "gcs:BUCKET[/PREFIX] or azure-table:TABLE (default: $MUTGUARD_STATE_STORE)",
    )


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log progress to stderr (accounts, regions, clusters, timings) and the SDKs' warnings",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="print only errors on stderr (no progress bar, no publishing summary)",
    )


def _exit_codes() -> str:
    return "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


# Adds a subcommand to the parser: (name, one-line summary) -> its own parser.
NewCommand = Callable[[str, str], argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mutguard",
        description="Measure how many mistakes stand between an attacker and cluster-admin.",
        epilog=_exit_codes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mutguard {__version__}")
    _add_verbosity(parser, default=False)
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (`mutguard COMMAND --help` lists its options)",
    )

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_exit_codes(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # SUPPRESS: a flag given before the subcommand is not reset by the subcommand's default.
        _add_verbosity(sub, default=argparse.SUPPRESS)
        return sub

    _scan_command(command)
    _publish_command(command)
    _snapshot_command(command)
    _checks_command(command)
    _explain_command(command)
    _suppressions_command(command)
    demo = command("demo", "scan the bundled example clusters")
    _add_clock_option(demo)
    _add_output_options(demo)
    _add_publish_options(demo, "--publish")
    return parser


def _scan_command(command: NewCommand) -> None:
    scan = command("scan", "scan live clusters or an offline snapshot")
    source = scan.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--snapshot", type=Path, metavar="DIR", help="a cluster directory or a directory of them"
    )
    _add_live_sources(source)
    _add_live_options(scan)
    _add_clock_option(scan)
    _add_output_options(scan)
    _add_publish_options(scan, "--publish")


def _publish_command(command: NewCommand) -> None:
    publish = command("publish", "send a saved JSON report to sinks")
    publish.add_argument(
        "report", type=Path, help="a report written by `scan --format json` ('-': stdin)"
    )
    _add_publish_options(publish, "--to")


def _snapshot_command(command: NewCommand) -> None:
    snapshot = command("snapshot", "save live clusters as a snapshot directory")
    _add_live_sources(snapshot.add_mutually_exclusive_group(required=True))
    snapshot.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="where to write one folder per cluster",
    )
    _add_live_options(snapshot)


def _checks_command(command: NewCommand) -> None:
    checks = command("checks", "list the check catalogue")
    checks.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or json"
    )
    checks.add_argument(
        "--provider",
        choices=_ProviderNames(live=False),
        metavar="NAME",
        help="only the checks that apply to this provider: %(choices)s (aws and eks are the "
        "same, and so on)",
    )


def _explain_command(command: NewCommand) -> None:
    explain = command(
        "explain", "show a cluster's attack paths and why each step costs what it costs"
    )
    explain.add_argument("cluster", help="the cluster's name (or ARN / id)")
    explained = explain.add_mutually_exclusive_group(required=True)
    explained.add_argument(
        "--snapshot", type=Path, metavar="DIR", help="a cluster directory or a directory of them"
    )
    _add_live_sources(explained)
    explained.add_argument("--demo", action="store_true", help="the bundled example clusters")
    _add_live_options(explain)
    _add_clock_option(explain)


def _suppressions_command(command: NewCommand) -> None:
    suppressions = command(
        "suppressions", "keep the suppressions in the state store, for scheduled runs"
    )
    suppressions.add_argument(
        "action",
        choices=("push", "show"),
        help="push: check FILE and keep it; show: print what the store keeps",
    )
    suppressions.add_argument(
        "file", type=Path, nargs="?", help="push: the YAML suppressions to keep (checked first)"
    )
    _add_store_options(suppressions.add_argument_group("state store"))


def _live_source(args: argparse.Namespace) -> ProviderPlugin:
    """The provider chosen by an option of its own (`--kubeconfig`), else by `--provider`."""
    for plugin in PROVIDERS.entries(search_installed=False):
        source = plugin.command_line.source if plugin.command_line else None
        if source is not None and getattr(args, source.dest, None) is not None:
            return plugin
    return PROVIDERS.get(args.provider)


def _usage(message: str) -> Exception:
    from mutguard.errors import InputError

    return InputError(message)


def _live_items(args: argparse.Namespace) -> Iterator:
    """Clusters from the live cloud as they are read, with a progress bar when stderr is a
    terminal: the caller assesses (or writes) each while the next ones are still being read, in
    the time the scan would otherwise spend waiting on the cloud's answers."""
    if args.concurrency < 1:
        raise _usage("--concurrency must be at least 1")
    if not 0 < args.region_timeout < float("inf"):  # NaN fails this too
        raise _usage("--region-timeout must be a number of seconds more than 0")
    plugin = _live_source(args)
    collect = plugin.collector_module().collect
    options = plugin.command_line.options(args)
    log.info("reading %s clusters (%d API calls at a time)", plugin.name, args.concurrency)
    show_bar = sys.stderr.isatty() and not (args.quiet or args.verbose)
    return _reading(lambda update: collect(options, update), show_bar)


def _reading(
    collect: Callable[[Callable[[int, int], None] | None], Iterable], show_bar: bool
) -> Iterator:
    if show_bar:
        from mutguard.render.table import progress_bar

        with progress_bar("reading clusters") as update:
            yield from collect(update)
        return
    started, count = time.monotonic(), 0
    for item in collect(None):
        count += 1
        yield item
    log.info("read %d item(s) in %.1f s", count, time.monotonic() - started)


def _earlier_runs(report: Report, args: argparse.Namespace) -> dict[str, tuple] | None:
    """For the HTML report's trend: each cluster's MUT in earlier runs, from the state store a
    run names (or the environment's), read before this run's publishing adds to it."""
    if args.format != "html" or not (
        args.publish or args.state_store or args.state or os.environ.get("MUTGUARD_STATE_STORE")
    ):
        return None
    from mutguard.publish.stores import report_history, store_spec

    return report_history(store_spec(args.state_store, args.state), report)


def _scan(items: Iterable, args: argparse.Namespace) -> int:
    """Assess, write the report, publish, then the exit code: unread, gate, undelivered,
    partial, in that order (README, Exit codes)."""
    from mutguard.scan import build_report

    started = time.monotonic()
    report = build_report(items, args.as_of or clock.now())
    log.info("assessed %d cluster(s) in %.1f s", len(report.clusters), time.monotonic() - started)
    _write_report(report, args)
    if report.errors and not report.clusters:
        for error in report.errors:
            print(
                f"mutguard: no cluster could be read: {error.scope}: {error.message}",
                file=sys.stderr,
            )
        return EXIT_UNREAD
    delivered = True
    if args.publish:
        from mutguard.publish.cli import publish_report

        # Dry-run messages go to stderr: stdout already holds the report.
        delivered = publish_report(report, args.publish, args, out=sys.stderr)
    if _gate_tripped(report, args):
        return EXIT_GATE
    if not delivered:
        return EXIT_UNDELIVERED
    if report.errors or any(c.errors for c in report.clusters):
        return EXIT_PARTIAL
    return EXIT_OK


def _write_report(report: Report, args: argparse.Namespace) -> None:
    from mutguard.files import write_atomically
    from mutguard.render import render

    history = _earlier_runs(report, args)
    if args.output and args.output != Path(STDIO):
        write_atomically(args.output, render(report, args.format, history=history))
    else:
        colour = _colour(args.format)
        text = render(report, args.format, color=colour, source=_source(args), history=history)
        sys.stdout.write(text)


def _gate_tripped(report: Report, args: argparse.Namespace) -> bool:
    """--fail-on: a FAIL at or above the severity; --max-mut: any MUT at or below the bound."""
    from mutguard.models import Severity, Status

    if args.fail_on:
        threshold = Severity(args.fail_on).rank
        if any(
            f.status is Status.FAIL and f.severity.rank >= threshold
            for c in report.clusters
            for f in c.findings
        ):
            return True
    if args.max_mut is not None:
        for cluster in report.clusters:
            values = [
                v
                for v in (cluster.mut, cluster.mut_workload, cluster.mut_credential)
                if v is not None
            ]
            if values and min(values) <= args.max_mut:
                return True
    return False


def _source(args: argparse.Namespace) -> str:
    """The options that name where this run's clusters came from, for `mutguard explain`."""
    if args.command == "demo":
        return "--demo"
    if args.snapshot is not None:
        return shlex.join(["--snapshot", str(args.snapshot)])
    plugin = _live_source(args)
    cli = plugin.command_line
    source = cli.source if cli else None
    if source is not None:
        words = [source.flag, str(getattr(args, source.dest))]
    else:
        words = ["--provider", args.provider]
    # The options that choose which clusters were read, as `explain` takes them too (the
    # provider's filters name no secret and no --external-id: no place to repeat it).
    filters = {**(cli.filters if cli else {}), "locations": "--locations"}
    for name, flag in filters.items():
        value = getattr(args, name)
        if isinstance(value, list):  # repeated flags
            words += [part for item in value for part in (flag, item)]
        elif isinstance(value, tuple) and value:  # comma-separated
            words += [flag, ",".join(value)]
        elif isinstance(value, str):
            words += [flag, value]
    return shlex.join(words)


def _check_publishing(args: argparse.Namespace) -> None:
    if args.publish:
        from mutguard.publish.cli import check_publishing

        check_publishing(args.publish, args)


def _colour(output_format: str) -> bool:
    """Colour for the terminal report on a terminal, unless NO_COLOR (no-color.org) is set."""
    return output_format == "table" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def cmd_scan(args: argparse.Namespace) -> int:
    _check_publishing(args)
    if args.snapshot is not None:
        from mutguard.providers import snapshot

        return _scan(snapshot.read(args.snapshot), args)
    return _scan(_live_items(args), args)


def _demo_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("mutguard") / "demo"))


def cmd_demo(args: argparse.Namespace) -> int:
    from mutguard.providers import snapshot

    _check_publishing(args)
    return _scan(snapshot.read(_demo_dir()), args)


def cmd_explain(args: argparse.Namespace) -> int:
    from mutguard.providers import snapshot
    from mutguard.render.explain import explain
    from mutguard.scan import build_report

    if args.demo or args.snapshot is not None:
        items = snapshot.read(_demo_dir() if args.demo else args.snapshot)
    else:
        items = _live_items(args)
    report = build_report(items, args.as_of or clock.now())
    matches = [c for c in report.clusters if args.cluster in (c.name, c.arn_or_id)]
    if not matches:
        known = ", ".join(sorted(c.name for c in report.clusters)) or "none"
        raise _usage(f"no cluster named {args.cluster!r} (found: {known})")
    sys.stdout.write("\n".join(explain(cluster) for cluster in matches))
    return EXIT_OK


def cmd_snapshot(args: argparse.Namespace) -> int:
    from mutguard.providers import snapshot
    from mutguard.sources import ScanError

    failed, written = False, 0
    for item in _live_items(args):
        if isinstance(item, ScanError):
            print(f"error {item.scope}: {item.message}", file=sys.stderr)
            failed = True
            continue
        folder = snapshot.write(item, args.output)
        written += 1
        failed = failed or bool(item.errors)
        print(f"wrote {folder}")
    if failed and not written:
        return EXIT_UNREAD
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mutguard.models import Report
    from mutguard.publish.cli import publish_report

    from_stdin = args.report == Path(STDIO)
    source = "stdin" if from_stdin else str(args.report)
    try:
        data = sys.stdin.buffer.read() if from_stdin else args.report.read_bytes()
        report = Report.model_validate_json(data)
    except ValidationError as exc:
        # Named: a problem of the whole report (its schema_version, a finding's check) first,
        # else the first problem and where it is; never the values read.
        errors = exc.errors(include_url=False, include_input=False)
        first = next((e for e in errors if not e["loc"]), errors[0])
        why = first["msg"].removeprefix("Value error, ")
        if first["loc"]:
            why = f"{'.'.join(str(part) for part in first['loc'])}: {why}"
        if len(errors) > 1:
            why += f"; {len(errors) - 1} more"
        raise _usage(f"{source}: not a mutguard JSON report ({why})") from None
    return EXIT_OK if publish_report(report, args.publish, args) else EXIT_UNDELIVERED


def cmd_suppressions(args: argparse.Namespace) -> int:
    """push: validate the file, then keep it in the store; show: print what the store keeps."""
    from mutguard.files import read_text_file
    from mutguard.publish.stores import open_store, store_spec
    from mutguard.suppressions import parse_suppressions_yaml

    store = open_store(store_spec(args.state_store, args.state))
    if args.action == "show":
        if args.file is not None:
            raise _usage("suppressions show takes no file")
        document = store.load_suppressions()
        sys.stdout.write(document if document is not None else "# no suppressions kept\n")
        return EXIT_OK
    if args.file is None:
        raise _usage("suppressions push needs the YAML file to keep")
    document = read_text_file(args.file)
    kept = parse_suppressions_yaml(document, str(args.file))
    store.save_suppressions(document)
    print(f"kept {len(kept)} suppression(s)", file=sys.stderr)
    return EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    import json

    from mutguard.checks import catalogue
    from mutguard.models import Provider

    chosen = [PROVIDERS.get(args.provider)] if args.provider else PROVIDERS.entries()
    for plugin in chosen:
        plugin.import_checks()
    checks = catalogue(Provider(chosen[0].name) if args.provider else None)
    if args.format == "json":
        data = [c.meta.model_dump(mode="json") for c in checks]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return EXIT_OK
    from mutguard.render.table import listing

    rows = [
        (
            m.id,
            m.severity.value,
            m.area.value,
            m.maturity.value,
            ",".join(p.value for p in m.providers),
            m.title,
        )
        for m in (c.meta for c in checks)
    ]
    columns = ("id", "severity", "area", "maturity", "providers", "title")
    width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 160
    sys.stdout.write(listing(f"mutguard checks ({len(checks)})", columns, rows, width))
    return EXIT_OK


COMMANDS = {
    "scan": cmd_scan,
    "demo": cmd_demo,
    "explain": cmd_explain,
    "publish": cmd_publish,
    "snapshot": cmd_snapshot,
    "checks": cmd_checks,
    "suppressions": cmd_suppressions,
}


def _load_named_provider(argv: Sequence[str] | None) -> None:
    """Load the provider `--provider NAME` names, so that a plug-in another distribution installs
    adds its options to the parser: the installed plug-ins are searched only when one is named.
    An unknown name is left to the parser to refuse."""
    named = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    named.add_argument("--provider")
    try:
        name = named.parse_known_args(argv)[0].provider
    except argparse.ArgumentError:  # `--provider` without its value: the parser says so
        return
    if name in PROVIDERS:
        PROVIDERS.get(name)


def main(argv: Sequence[str] | None = None) -> int:
    _load_named_provider(argv)
    args = build_parser().parse_args(argv)
    from mutguard.errors import InputError, StoreError

    with _logging_for(args.verbose, args.quiet):
        try:
            return COMMANDS[args.command](args)
        except KeyboardInterrupt:
            # One line instead of a traceback from whichever call was waiting: a live scan spends
            # its time collecting, before anything is written, published or saved.
            print("mutguard: interrupted; nothing was reported or published", file=sys.stderr)
            return EXIT_INTERRUPTED
        except InputError as exc:
            print(f"mutguard: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (OSError, StoreError) as exc:
            print(f"mutguard: {exc}", file=sys.stderr)
            return EXIT_USAGE


@contextmanager
def _logging_for(verbose: bool, quiet: bool) -> Iterator[None]:
    """mutguard's own warnings by default, its progress with -v, errors only with -q; the SDKs'
    loggers say only errors unless -v. A host that set up logging keeps its handlers, and its
    levels once the command is done."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.captureWarnings(True)
    loggers = [log, *(logging.getLogger(name) for name in SDK_LOGGERS)]
    before = [logger.level for logger in loggers]
    log.setLevel(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
    for logger in loggers[1:]:
        logger.setLevel(logging.WARNING if verbose else logging.ERROR)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for logger, level in zip(loggers, before, strict=True):
            logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
