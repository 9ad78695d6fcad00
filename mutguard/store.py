"""The state store's side: what a store must do (`StateStore`), claims and scheduled runs.

`StateStore` is the protocol (load the last state of some clusters, history included,
save new states, claim and release alerts); the stores themselves are in mutguard/publish/
(SQLite, the default for the CLI, in sqlite.py). Cloud stores map `ClusterState.to_dict()` /
`from_dict()` onto their items; a record without history (written before it was kept) loads
with none. Suppressions are in mutguard/suppressions.py.

Claims: two runs publishing the same report at the same time both load the old state before
either saves, so both would send the same alerts. Before sending, a run claims each alert with a
conditional write (create only if absent) of a `ClaimKey`: (cluster key, the report's
generated_at and a fingerprint of the state it goes from and to; see pipeline.claim_keys). Of
the runs of one report exactly one wins; runs of different reports never meet. Claims are kept
CLAIM_DAYS, well past the end of any run that could contend.

Scheduled runs (mutguard/publish/fleet.py): the dispatcher records how many parts (queued
scans) a run has before it queues any (`begin_run`, kept if already there), each worker records
its part's small summary (`finish_part`, replacing its own record, so a redelivered part counts
once), and reads the run back (`run_progress`). Whoever sees every part finished claims the
run's digest (`claim` of `fleet_claim(run_id)`), so exactly one sends it. Run records are kept
CLAIM_DAYS, as claims are.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mutguard import clock
from mutguard.errors import StoreError
from mutguard.state import ClusterState, MutPoint

# (cluster key, or DIGEST_CLAIM for a whole digest; "<the report's generated_at>/<fingerprint>")
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

    def begin_run(self, run_id: str, parts: int, started_at: datetime.datetime) -> None:
        """Record that a scheduled run queued `parts` scans at `started_at`; a record of the run
        that is already there is kept (a retried dispatch)."""
        ...

    def finish_part(self, run_id: str, part: int, summary: Mapping[str, Any]) -> None:
        """Record that part `part` of the run finished, with its summary (JSON-compatible),
        replacing that part's earlier record."""
        ...

    def run_progress(self, run_id: str) -> RunProgress:
        """What is recorded of the run, read consistently: after this process's finish_part, it
        sees that part and every part recorded before it. A store may stop reading parts at
        one that is missing (the run is not complete then)."""
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
