"""The state store's side: what a store must do (`StateStore`), claims and scheduled runs.

`StateStore` is the protocol (load the last state of some clusters, history included,
save new states, claim and release alerts); the stores themselves are in mutguard/publish/
(SQLite, the default for the CLI, in sqlite.py). Cloud stores map `ClusterState.to_dict()` /
`from_dict()` onto their items; a record without history (written before it was kept) loads
with none. Suppressions are in mutguard/suppressions.py.

Claims: two runs publishing the same report at the same time both load the old state before
either saves, so both would send the same alerts. Before sending, a run claims each alert with a
conditional write (create only if absent) of a `ClaimKey`: (cluster key, the report's
generated_at and a fingerprint of the state it goes from and to, or for a part of a scheduled
run the run's id and a fingerprint of the state it goes from; see pipeline.claim_keys). Of the
runs of one report exactly one wins; runs of different reports never meet. Claims are kept
CLAIM_DAYS, well past the end of any run that could contend.

Delivered marks: a run that won claims and delivered their alerts marks them delivered
(`mark_delivered`) before it saves its states. A run that loses a claim saves that cluster's
state without sending when the claim is marked (its holder sent the alert, then may have died
before saving: a Lambda worker killed or timed out, its message redelivered), and leaves the
cluster alone otherwise (its holder is still sending, or died before delivering; then nothing
was saved, and the next scheduled run alerts). Marks are kept as long as claims.

Scheduled runs (mutguard/publish/fleet.py): the dispatcher records how many parts (queued
scans) a run has before it queues any (`begin_run`, kept if already there), each worker records
its part's small summary (`finish_part`, replacing its own record, so a redelivered part counts
once), and reads the run back (`run_progress`). Whoever sees every part finished claims the
run's digest (`claim` of `fleet_claim(run_id)`), so exactly one sends it. Run records are kept
CLAIM_DAYS, as claims are.

A part that never finishes (its message ends in the dead-letter queue) would hold the digest
back, so each store keeps a pointer to the run begun last (`LatestRun`): `begin_run` moves it to
the new run and answers the run before it when that one's digest was not sent (`digest_sent`
marks it), and the dispatcher queues one `finish_run` follow-up for it. The pointer moves by
compare-and-set (`advance_latest`; SQLite's inside the transaction that records the run): of
two dispatches, each learns the run the other did not, and a retried dispatch finds the
pointer at its own run and learns the same run again. Only writes are needed on the
dispatcher's side (DynamoDB: a conditional PutItem that fails hands back the item it found).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mutguard import clock
from mutguard.errors import StoreError
from mutguard.state import ClusterState, MutPoint

# (cluster key, or DIGEST_CLAIM for a whole digest; "<the report's generated_at, or the
# scheduled run's id>/<fingerprint>")
ClaimKey = tuple[str, str]
DIGEST_CLAIM = "digest"
FLEET_CLAIM = "fleet-digest"  # a scheduled run's one fleet digest: (FLEET_CLAIM, run id)
CLAIM_DAYS = 7  # how long a claim is kept (the cloud stores let their TTL or lifecycle drop it)


class StateStore(Protocol):
    def load(self, keys: Iterable[str]) -> dict[str, ClusterState]:
        """The last saved state of each of these clusters that has one, its MUT history
        (ClusterState.history) included."""
        ...

    def save(self, states: Mapping[str, ClusterState]) -> None:
        """Replace the state of these clusters (others are kept)."""
        ...

    def load_suppressions(self) -> str | None:
        """The suppressions document kept in the store (the YAML text `mutguard suppressions
        push` saved), or None when the store holds none."""
        ...

    def save_suppressions(self, document: str) -> None:
        """Keep this suppressions document (YAML text, already validated), replacing any other."""
        ...

    def claim(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        """Claim these alerts for this run, each with a conditional write that succeeds for one
        run only; the keys this run won (the others are held by another run of the report)."""
        ...

    def release(self, keys: Iterable[ClaimKey]) -> None:
        """Give up claims this run won but could not deliver, so that a later run sends them."""
        ...

    def mark_delivered(self, keys: Iterable[ClaimKey]) -> None:
        """Note that every sink took the alerts of these claims (won by this run), before the
        run saves its states: a run killed in between leaves that note behind."""
        ...

    def delivered(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        """Of these claims (held by another run), the ones marked delivered."""
        ...

    def begin_run(self, run_id: str, parts: int, started_at: datetime.datetime) -> str | None:
        """Record that a scheduled run queued `parts` scans at `started_at`; a record of the run
        that is already there is kept (a retried dispatch). Returns the run begun before it when
        that run's fleet digest was not sent (a follow-up is due), else None; a retried
        dispatch learns the same."""
        ...

    def digest_sent(self, run_id: str) -> None:
        """Note that the run's fleet digest went out, so that the next run begun asks for no
        follow-up (nothing, when a later run has begun already)."""
        ...

    def finish_part(self, run_id: str, part: int, summary: Mapping[str, Any]) -> None:
        """Record that part `part` of the run finished, with its summary (JSON-compatible),
        replacing that part's earlier record."""
        ...

    def run_progress(self, run_id: str, every_part: bool = False) -> RunProgress:
        """What is recorded of the run, read consistently: after this process's finish_part, it
        sees that part and every part recorded before it. Unless `every_part` (a follow-up's
        digest of what finished), a store may leave parts unread once it knows one is missing
        (the run is not complete then)."""
        ...


@dataclass(frozen=True)
class RunProgress:
    """A scheduled run as the store holds it: how many parts it has and when it started (None:
    no record of the run, e.g. it expired), and the summary of each finished part read, by
    number (every finished part when the run is complete)."""

    parts: int | None
    started_at: datetime.datetime | None
    finished: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.parts is not None and all(
            part in self.finished for part in range(1, self.parts + 1)
        )


@dataclass(frozen=True)
class LatestRun:
    """A store's pointer to the run begun last: the run before it (`previous`), the run it asked
    a follow-up for (`follow_up`: the previous one, when its digest was not sent), and whether
    its own digest was sent. `version` is the store's token for compare-and-set (a GCS
    generation, an Azure ETag); DynamoDB compares the values."""

    run: str
    previous: str | None = None
    follow_up: str | None = None
    sent: bool = False
    version: Any = field(default=None, compare=False)

    def followed_by(self, run_id: str) -> LatestRun:
        return LatestRun(run_id, self.run, None if self.sent else self.run)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "previous": self.previous,
            "follow_up": self.follow_up,
            "sent": self.sent,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], version: Any = None) -> LatestRun:
        return cls(
            str(data["run"]),
            data.get("previous"),
            data.get("follow_up"),
            bool(data.get("sent")),
            version,
        )


# Writes `new` if the pointer is `expected` (None: there is none): None when written, else the
# pointer as it is (not written).
ReplaceLatest = Callable[[LatestRun | None, LatestRun], LatestRun | None]


def advance_latest(run_id: str, replace_latest: ReplaceLatest) -> str | None:
    """Move the pointer to `run_id` by compare-and-set; the run a follow-up is due for. A
    pointer at this run already (a retried dispatch) answers what it answered then; one whose
    run followed this one (a retry after the next run began) is left alone: that run's dispatch
    asked about this one."""
    expected: LatestRun | None = None
    new = LatestRun(run_id)
    while (current := replace_latest(expected, new)) is not None:
        if current.run == run_id:
            return current.follow_up
        if current.previous == run_id:
            return None
        expected, new = current, current.followed_by(run_id)
    return new.follow_up


def settle_write(
    written: bool,
    new: LatestRun,
    latest: Callable[[], LatestRun | None],
    replace_latest: ReplaceLatest,
) -> LatestRun | None:
    """A ReplaceLatest's answer after its conditional write, for stores whose failed write does
    not say what it found: None when written, or when a retried write whose first try went
    through finds its own pointer; else the pointer as it is. One deleted in between is written
    again as the first."""
    if written:
        return None
    current = latest()
    if current is None:
        return replace_latest(None, new)
    return None if current == new else current


def mark_sent(
    run_id: str, latest: Callable[[], LatestRun | None], replace_latest: ReplaceLatest
) -> None:
    """Set `sent` on the pointer while it is at `run_id` (StateStore.digest_sent)."""
    current = latest()
    while current is not None and current.run == run_id and not current.sent:
        current = replace_latest(current, replace(current, sent=True, version=None))


def fleet_claim(run_id: str) -> ClaimKey:
    return (FLEET_CLAIM, run_id)


def histories(store: StateStore, keys: Iterable[str]) -> dict[str, tuple[MutPoint, ...]]:
    """The MUT history of each of these clusters that has a saved state (oldest first)."""
    return {key: state.history for key, state in store.load(keys).items()}


def claim_each(
    store: StateStore, keys: Iterable[ClaimKey], claim_one: Callable[[ClaimKey], bool]
) -> set[ClaimKey]:
    """Claim keys one conditional write each (`claim_one`: True when this run's write made it).
    When a write fails, what was won is given back before the error goes on: the run stops
    there, so those claims would hold an alert nobody sends."""
    won: set[ClaimKey] = set()
    try:
        for key in dict.fromkeys(keys):
            if claim_one(key):
                won.add(key)
    except StoreError:
        give_back(store, won)
        raise
    return won


def give_back(store: StateStore, won: Iterable[ClaimKey]) -> None:
    """Release claims a store won before claiming the rest failed (that failure is what the
    run reports, so failing to release too is not raised)."""
    with contextlib.suppress(StoreError):
        store.release(won)


def claim_cutoff() -> datetime.datetime:
    """Claims made before this are old enough to drop."""
    return clock.now() - datetime.timedelta(days=CLAIM_DAYS)
