"""One fleet digest per scheduled run: the whole fleet's MUT once every queued scan finished.

A scheduled run is one dispatch fanned out into parts (queued scans, one per provider, account
and region). The dispatcher records how many parts it queued and when the run started before
queueing any (`StateStore.begin_run`), and tells each part both; each worker, after publishing
its own part's alerts, records its part's summary (`part_summary`: each cluster's key, name and
MUT, its last saved MUT before the run started, and what could not be read) and reads the run
back (`finish_part`). A worker that sees every part finished claims the run's digest
(`store.fleet_claim`, the same conditional write as alert claims), so of concurrent or
redelivered finishers exactly one sends it; the others, and every later redelivery, find the
claim taken. A part that fails and is delivered again replaces its own record, so it counts
once; the digest says what each part reported when the last of them finished.

The digest (`assemble`): how many clusters have each lowest MUT, the worst clusters, the
clusters whose MUT went down or up since the last run (each cluster's last saved MUT before the
run started, which its part read from the cluster's history in the store, so the digest itself
reads no cluster's state however large the fleet), and the accounts and regions not scanned. It
goes to the sinks the worker publishes to, each rendering it with its `render_digest`: people's
sinks (slack, teams, smtp, ses) in words (`digest_sections`, worded as render/summary.py and
publish/text.py word a cluster), machine sinks (sqs, sns, pubsub, webhook, azure-queue) as one
JSON body (`digest_json`) with the attributes `type` (`fleet_digest`), `run_id` and `clusters`.
Security Hub and Security Command Center take findings, not messages: they have no
`render_digest` and get no digest. When a sink fails, the claim is given back, so that the part
delivered again sends the digest then. A digest sent is noted in the
store (`digest_sent`), so that the next run's dispatch asks for no follow-up.

A part that never finishes (every delivery timed out or crashed, and the message went to the
dead-letter queue) would hold the digest back for good. So the next run's dispatcher, learning
from `begin_run` that the run before it has no digest sent, queues one `finish_run` follow-up,
and the worker that takes it (`finish_run`) claims the digest as a last finisher does and sends
what finished, naming the parts that did not (`not_finished`: "2 of 1000 parts did not finish:
3, 17"; `parts_not_finished` in the JSON body). A digest claimed already (sent by the last
finisher, or by a follow-up delivered before) means nothing to do; a last finisher arriving
after the follow-up finds the claim taken. A run started more than CLAIM_DAYS ago gets no
follow-up digest: its claim may be gone already.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from mutguard.errors import StoreError
from mutguard.models import Report, cluster_key
from mutguard.publish.base import SinkContext, SinkResult
from mutguard.publish.pipeline import SinkSpec, build_sinks, deliver_items
from mutguard.publish.secrets import Redactor, SecretRefs
from mutguard.publish.text import MUT_LABELS, SCAN_ERRORS_TITLE, limited, truncate
from mutguard.render.summary import MUT_STARTS
from mutguard.state import MUT_FIELDS, ClusterState, Mut, utc
from mutguard.store import (
    CLAIM_DAYS,
    RunProgress,
    StateStore,
    claim_cutoff,
    fleet_claim,
    give_back,
)

log = logging.getLogger("mutguard.publish")

WORST = 5  # clusters named as the worst
LISTED = 25  # entries per list of the JSON body (its counts give the totals)
MAX_MESSAGE = 300  # characters of a scan error's message
DIGEST_TYPE = "fleet_digest"
NOT_FINISHED_TITLE = "Parts that did not finish"


# --- What a part records ----------------------------------------------------------------


def part_summary(
    report: Report, previous: Mapping[str, ClusterState], started_at: datetime.datetime
) -> dict[str, Any]:
    """A part's small summary: each cluster's key, name, place and MUT, its last MUT saved
    before the run started (`before`, from its state in `previous`; left out when there is
    none), and the scopes that could not be read (its accounts, projects, subscriptions or
    regions)."""
    clusters = []
    for c in report.clusters:
        key = cluster_key(c)
        entry: dict[str, Any] = {
            "key": key,
            "name": c.name,
            "provider": c.provider.value,
            "account": c.account,
            "location": c.location,
            **{name: getattr(c, name) for name in MUT_FIELDS},
            "upper_bound": [name for name in MUT_FIELDS if name in c.mut_upper_bound],
        }
        if (before := _before(previous, key, started_at)) is not None:
            entry["before"] = {name: before.value(name) for name in MUT_FIELDS}
        clusters.append(entry)
    return {
        "clusters": clusters,
        "not_scanned": [
            {"scope": e.scope, "message": truncate(e.message, MAX_MESSAGE)} for e in report.errors
        ],
    }


# --- The digest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetCluster:
    key: str
    name: str
    provider: str
    account: str
    location: str
    mut: Mut
    upper_bound: tuple[str, ...]
    before: Mut | None  # the last saved MUT before the run; None: never saved before

    @property
    def title(self) -> str:
        """As publish/text.py's cluster_title: name, provider, location, lowest MUT."""
        lowest = self.mut.lowest()
        mut = f": lowest MUT {lowest}" if lowest is not None else ": MUT unknown"
        return f"{self.name} ({self.provider}, {self.location}){mut}"

    @property
    def headline(self) -> str:
        """As render/summary.py's headline."""
        if self.mut.mut is None:
            return "MUT unknown: the cluster could not be read"
        parts = [f"{self._value(name)} from {start}" for name, start in MUT_STARTS]
        return "MUT " + " · ".join(parts)

    def _value(self, name: str) -> str:
        number = self.mut.value(name)
        if number is None:
            return "?"
        return f"≤{number}" if name in self.upper_bound else str(number)

    @property
    def went_down(self) -> tuple[str, ...]:
        return self.before.dropped_in(self.mut) if self.before else ()

    @property
    def went_up(self) -> tuple[str, ...]:
        return self.mut.dropped_in(self.before) if self.before else ()

    def moves(self) -> str:
        """As publish/text.py's mut_change: `3 → 2 from the internet; ...`."""
        before_run = self.before or self.mut
        return "; ".join(
            f"{before} → {after} {MUT_LABELS[name]}"
            for name in MUT_FIELDS
            if (before := before_run.value(name)) is not None
            and (after := self.mut.value(name)) is not None
            and before != after
        )

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "cluster": self.key,
            "name": self.name,
            "provider": self.provider,
            "account": self.account,
            "location": self.location,
            **{name: self.mut.value(name) for name in MUT_FIELDS},
            "upper_bound": list(self.upper_bound),
        }
        if self.before is not None:
            shown["before"] = {name: self.before.value(name) for name in MUT_FIELDS}
        return shown


@dataclass(frozen=True)
class FleetDigest:
    run_id: str
    started_at: datetime.datetime
    parts: int
    clusters: tuple[FleetCluster, ...]  # worst first
    not_scanned: tuple[tuple[str, str], ...]  # (scope, message)
    not_finished: tuple[int, ...] = ()  # parts with no record (a follow-up's digest)

    @property
    def distribution(self) -> dict[str, int]:
        """Clusters by their lowest MUT, lowest first; `unknown` for clusters not read."""
        counts = Counter(c.mut.lowest() for c in self.clusters)
        known = sorted(value for value in counts if value is not None)
        shown = {str(value): counts[value] for value in known}
        if counts[None]:
            shown["unknown"] = counts[None]
        return shown

    @property
    def worse(self) -> list[FleetCluster]:
        return [c for c in self.clusters if c.went_down]

    @property
    def better(self) -> list[FleetCluster]:
        return [c for c in self.clusters if c.went_up and not c.went_down]


def assemble(run_id: str, progress: RunProgress) -> FleetDigest:
    """The digest of a run from its finished parts' summaries (every part read, the missing
    ones named)."""
    assert progress.parts is not None and progress.started_at is not None
    started_at = utc(progress.started_at)
    clusters: dict[str, FleetCluster] = {}
    not_scanned: list[tuple[str, str]] = []
    for part in sorted(progress.finished):
        summary = progress.finished[part]
        for item in summary["clusters"]:
            key = item["key"]
            clusters[key] = FleetCluster(
                key=key,
                name=item["name"],
                provider=item["provider"],
                account=item["account"],
                location=item["location"],
                mut=Mut(*(item[name] for name in MUT_FIELDS)),
                upper_bound=tuple(item["upper_bound"]),
                before=Mut(*(item["before"][name] for name in MUT_FIELDS))
                if "before" in item
                else None,
            )
        not_scanned += [(e["scope"], e["message"]) for e in summary["not_scanned"]]
    return FleetDigest(
        run_id=run_id,
        started_at=started_at,
        parts=progress.parts,
        clusters=tuple(sorted(clusters.values(), key=_worst_first)),
        not_scanned=tuple(not_scanned),
        not_finished=tuple(
            part for part in range(1, progress.parts + 1) if part not in progress.finished
        ),
    )


def _before(
    previous: Mapping[str, ClusterState], key: str, started_at: datetime.datetime
) -> Mut | None:
    """The cluster's MUT as last saved before the run started (its part, delivered once or
    more, saves the run's own after it)."""
    state = previous.get(key)
    earlier = [p for p in state.history if p.generated_at < utc(started_at)] if state else []
    return earlier[-1].mut if earlier else None


def _worst_first(cluster: FleetCluster) -> tuple[bool, int, str]:
    lowest = cluster.mut.lowest()
    return (lowest is None, lowest or 0, cluster.name)


# --- In words and as JSON ----------------------------------------------------------------


def digest_subject(digest: FleetDigest) -> str:
    """E.g. "mutguard fleet digest: 12 clusters, worst MUT 0 (payments-legacy), 2 worse,
    1 better, 1 not scanned"."""
    count = len(digest.clusters)
    parts = [f"{count} cluster{'s' if count != 1 else ''}"]
    worst = next((c for c in digest.clusters if c.mut.lowest() is not None), None)
    if worst is not None:
        parts.append(f"worst MUT {worst.mut.lowest()} ({worst.name})")
    parts += [f"{len(digest.worse)} worse", f"{len(digest.better)} better"]
    if digest.not_scanned:
        parts.append(f"{len(digest.not_scanned)} not scanned")
    if digest.not_finished:
        parts.append(f"{len(digest.not_finished)} of {digest.parts} parts did not finish")
    return "mutguard fleet digest: " + ", ".join(parts)


def not_finished_line(digest: FleetDigest) -> str:
    """E.g. "2 of 1000 parts did not finish: 3, 17" (the first LISTED part numbers)."""
    numbers = ", ".join(str(part) for part in digest.not_finished[:LISTED])
    more = ", …" if len(digest.not_finished) > LISTED else ""
    return f"{len(digest.not_finished)} of {digest.parts} parts did not finish: {numbers}{more}"


def digest_sections(digest: FleetDigest) -> list[tuple[str, list[str]]]:
    """(title, lines) in the order people read them; empty lists are left out."""
    spread = " · ".join(f"{value}: {count}" for value, count in digest.distribution.items())
    finished = [not_finished_line(digest)] if digest.not_finished else []
    sections = [
        (NOT_FINISHED_TITLE, finished),
        ("Clusters by lowest MUT", [spread] if spread else []),
        ("Worst clusters", [f"{c.title} · {c.headline}" for c in digest.clusters[:WORST]]),
        ("MUT down since the last run", [f"{c.title}: {c.moves()}" for c in digest.worse]),
        ("MUT up since the last run", [f"{c.title}: {c.moves()}" for c in digest.better]),
        (SCAN_ERRORS_TITLE, [f"{scope}: {message}" for scope, message in digest.not_scanned]),
    ]
    return [(title, lines) for title, lines in sections if lines]


def digest_text(digest: FleetDigest, most: int) -> str:
    lines = [digest_subject(digest), f"Run {digest.run_id}: {digest.parts} parts"]
    for title, entries in digest_sections(digest):
        lines += ["", f"{title} ({len(entries)})", *(f"- {e}" for e in limited(entries, most))]
    return "\n".join(lines) + "\n"


def digest_html(digest: FleetDigest, most: int) -> str:
    parts = [f"<h2>{html.escape(digest_subject(digest))}</h2>"]
    for title, entries in digest_sections(digest):
        items = "".join(f"<li>{html.escape(e)}</li>" for e in limited(entries, most))
        parts.append(f"<h3>{html.escape(title)} ({len(entries)})</h3><ul>{items}</ul>")
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def digest_body(digest: FleetDigest) -> dict[str, Any]:
    """The machine sinks' JSON: counts in full, each list its first LISTED entries."""
    return {
        "type": DIGEST_TYPE,
        "run_id": digest.run_id,
        "started_at": digest.started_at.isoformat(),
        "parts": digest.parts,
        "counts": {
            "clusters": len(digest.clusters),
            "worse": len(digest.worse),
            "better": len(digest.better),
            "not_scanned": len(digest.not_scanned),
            "parts_not_finished": len(digest.not_finished),
        },
        "distribution": digest.distribution,
        "worst": [c.to_dict() for c in digest.clusters[:LISTED]],
        "worse": [c.to_dict() for c in digest.worse[:LISTED]],
        "better": [c.to_dict() for c in digest.better[:LISTED]],
        "not_scanned": [
            {"scope": scope, "message": message} for scope, message in digest.not_scanned[:LISTED]
        ],
        "parts_not_finished": list(digest.not_finished[:LISTED]),
    }


def digest_attributes(digest: FleetDigest) -> dict[str, str | int]:
    return {"type": DIGEST_TYPE, "run_id": digest.run_id, "clusters": len(digest.clusters)}


def digest_json(digest: FleetDigest) -> str:
    """digest_body as a message body."""
    return json.dumps(digest_body(digest), ensure_ascii=False, separators=(",", ":"))


# --- Finishing a part ---------------------------------------------------------------------


def send(digest: FleetDigest, specs: Sequence[SinkSpec]) -> list[SinkResult]:
    """The digest to every sink that takes messages (those with `render_digest(digest)`), one
    result per sink, as publish() does."""
    redactor = Redactor()
    context = SinkContext(SecretRefs(redactor), redactor)
    results = []
    for sink in build_sinks(specs, context):
        render = getattr(sink, "render_digest", None)
        if render is None:
            log.info("sink %s takes findings, not messages: no fleet digest", sink.name)
            continue
        results.append(deliver_items(sink, partial(render, digest), context))
    return results


def finish_part(
    store: StateStore,
    run_id: str,
    part: int,
    started_at: datetime.datetime,
    report: Report,
    specs: Sequence[SinkSpec],
) -> list[SinkResult] | None:
    """Record this part of the run started at `started_at`, and when it completes the run,
    claim and send the run's digest: the sinks' results, or None when this worker sends nothing
    (parts still running, the run not recorded, or another worker's claim). StoreError and sink
    ConfigurationError go on."""
    previous = store.load(cluster_key(c) for c in report.clusters)
    store.finish_part(run_id, part, part_summary(report, previous, started_at))
    progress = store.run_progress(run_id)
    if progress.parts is None:
        log.warning("run %s is not recorded in the state store: no fleet digest", run_id)
        return None
    if not progress.complete:
        log.info("run %s: not all of its %d parts have finished", run_id, progress.parts)
        return None
    if not store.claim([fleet_claim(run_id)]):
        log.info("run %s: another worker sends the fleet digest", run_id)
        return None
    return _send_claimed(store, run_id, progress, specs)


def finish_run(
    store: StateStore, run_id: str, specs: Sequence[SinkSpec]
) -> list[SinkResult] | None:
    """A dispatcher's follow-up: unless the run's digest is claimed already, claim it and send
    the digest of what finished, naming the parts that did not. The sinks' results, or None
    when nothing is sent. StoreError and sink ConfigurationError go on."""
    progress = store.run_progress(run_id, every_part=True)
    if progress.parts is None or progress.started_at is None:
        log.warning("run %s is not recorded in the state store: no fleet digest", run_id)
        return None
    if utc(progress.started_at) < claim_cutoff():
        log.warning("run %s started over %d days ago: no fleet digest", run_id, CLAIM_DAYS)
        return None
    if not store.claim([fleet_claim(run_id)]):
        log.info("run %s: its fleet digest is sent or being sent", run_id)
        return None
    log.info("run %s: %d of %d parts finished", run_id, len(progress.finished), progress.parts)
    return _send_claimed(store, run_id, progress, specs)


def _send_claimed(
    store: StateStore, run_id: str, progress: RunProgress, specs: Sequence[SinkSpec]
) -> list[SinkResult]:
    """Send the digest whose claim this worker won; the claim goes back when it is not sent,
    so that the message delivered again sends it."""
    claim = fleet_claim(run_id)
    try:
        digest = assemble(run_id, progress)
        results = send(digest, specs)
    except Exception:
        give_back(store, [claim])
        raise
    if not all(result.ok for result in results):
        give_back(store, [claim])
        return results
    try:
        store.digest_sent(run_id)
    except StoreError as exc:  # sent: at worst the next dispatch queues a follow-up for nothing
        log.warning(
            "run %s: the fleet digest went out, but the store did not note it: %s", run_id, exc
        )
    return results
