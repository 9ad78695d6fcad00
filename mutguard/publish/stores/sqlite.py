"""The default state store: one SQLite file (stdlib sqlite3), `sqlite[:PATH]`.

Tables: `clusters` (one row per cluster: readable and its MUT), `findings` (per cluster, each
finding's status, severity and whether it was suppressed), `history` (per cluster, the MUT of
its last runs, mutguard.state.MutPoint: generated_at in ISO 8601 UTC, the three values and the
upper-bound fields comma-separated), `documents` (the suppressions), `claims`, `delivered` (the
claims marked delivered), and a scheduled run's `runs` (its part count) and `run_parts` (each
finished part's summary as JSON). Findings and history rows go with their cluster's row (ON
DELETE CASCADE). `latest_run` is the one row pointing at the run begun last
(mutguard.store.LatestRun), moved in the transaction that records a run. Every table is created
when missing, so a file written before the history was kept gains the table and loads with none.
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from mutguard import clock
from mutguard.errors import StoreError
from mutguard.models import Severity, Status
from mutguard.state import MUT_FIELDS, ClusterState, FindingState, Mut, MutPoint, utc
from mutguard.store import (
    ClaimKey,
    LatestRun,
    RunProgress,
    advance_latest,
    claim_cutoff,
    mark_sent,
)

STATE_PATH_ENV = "MUTGUARD_STATE_FILE"


def default_state_path(environ: Mapping[str, str] = os.environ) -> Path:
    """$MUTGUARD_STATE_FILE, else $XDG_STATE_HOME/mutguard/state.sqlite3 (~/.local/state)."""
    if explicit := environ.get(STATE_PATH_ENV):
        return Path(explicit)
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mutguard" / "state.sqlite3"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    key TEXT PRIMARY KEY,
    readable INTEGER NOT NULL,
    mut INTEGER, mut_workload INTEGER, mut_credential INTEGER,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS findings (
    cluster_key TEXT NOT NULL REFERENCES clusters(key) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    suppressed INTEGER NOT NULL,
    PRIMARY KEY (cluster_key, check_id, resource)
);
CREATE TABLE IF NOT EXISTS history (
    cluster_key TEXT NOT NULL REFERENCES clusters(key) ON DELETE CASCADE,
    generated_at TEXT NOT NULL,
    mut INTEGER, mut_workload INTEGER, mut_credential INTEGER,
    upper_bound TEXT NOT NULL,
    PRIMARY KEY (cluster_key, generated_at)
);
CREATE TABLE IF NOT EXISTS documents (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    cluster_key TEXT NOT NULL,
    report TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (cluster_key, report)
);
CREATE TABLE IF NOT EXISTS delivered (
    cluster_key TEXT NOT NULL,
    report TEXT NOT NULL,
    delivered_at TEXT NOT NULL,
    PRIMARY KEY (cluster_key, report)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    parts INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_parts (
    run_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    summary TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, part)
);
CREATE TABLE IF NOT EXISTS latest_run (
    pointer INTEGER PRIMARY KEY CHECK (pointer = 1),
    run_id TEXT NOT NULL,
    previous TEXT,
    follow_up TEXT,
    sent INTEGER NOT NULL
);
"""
SUPPRESSIONS_DOCUMENT = "suppressions"


class SqliteStateStore:
    """One SQLite file; each save replaces the given clusters in one transaction.

    Any failure (not a database, a directory, locked by another run for longer than
    `lock_wait_seconds`, a folder that cannot be created) raises StoreError naming the file."""

    lock_wait_seconds = 10.0  # another run saving: wait for it, but not forever

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_state_path()

    @contextmanager
    def _connection(self, doing: str) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.lock_wait_seconds)
            try:
                connection.execute("PRAGMA foreign_keys = ON")
                connection.executescript(_SCHEMA)
                yield connection
            finally:
                connection.close()
        except OSError as err:
            raise StoreError(f"could not {doing}: {self._what}: {err.strerror or err}") from None
        except (sqlite3.Error, ValueError) as err:  # ValueError: a row mutguard did not write
            raise StoreError(f"could not {doing}: {self._what}: {err}") from None

    @property
    def _what(self) -> str:
        return f"state store sqlite:{self.path}"

    def load(self, keys: Iterable[str]) -> dict[str, ClusterState]:
        wanted = list(keys)
        # One read transaction: a cluster's row, findings and history as one save left them,
        # even while another run saves.
        with self._connection("read the state") as connection, connection:
            connection.execute("BEGIN")
            return {
                key: state
                for key in wanted
                if (state := _load_cluster(connection, key)) is not None
            }

    def save(self, states: Mapping[str, ClusterState]) -> None:
        saved_at = clock.now().isoformat()
        # `connection` as a context: one transaction, all clusters or none.
        with self._connection("save the state") as connection, connection:
            for key, state in states.items():
                _save_cluster(connection, key, state, saved_at)

    def load_suppressions(self) -> str | None:
        with self._connection("read the state") as connection:
            row = connection.execute(
                "SELECT body FROM documents WHERE name = ?", (SUPPRESSIONS_DOCUMENT,)
            ).fetchone()
        return None if row is None else str(row[0])

    def save_suppressions(self, document: str) -> None:
        saved_at = clock.now().isoformat()
        with self._connection("save the state") as connection, connection:
            connection.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?)",
                (SUPPRESSIONS_DOCUMENT, document, saved_at),
            )

    def claim(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        """`INSERT OR IGNORE` in one transaction: a row inserted is a claim won. Claims (and
        delivered marks) older than CLAIM_DAYS are deleted first."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return set()
        claimed_at = clock.now().isoformat(timespec="seconds")
        cutoff = claim_cutoff().isoformat(timespec="seconds")
        won: set[ClaimKey] = set()
        with self._connection("claim alerts in the state") as connection, connection:
            connection.execute("DELETE FROM claims WHERE claimed_at < ?", (cutoff,))
            connection.execute("DELETE FROM delivered WHERE delivered_at < ?", (cutoff,))
            for key in wanted:
                cursor = connection.execute(
                    "INSERT OR IGNORE INTO claims VALUES (?, ?, ?)", (*key, claimed_at)
                )
                if cursor.rowcount == 1:
                    won.add(key)
        return won

    def release(self, keys: Iterable[ClaimKey]) -> None:
        with self._connection("release claims in the state") as connection, connection:
            connection.executemany(
                "DELETE FROM claims WHERE cluster_key = ? AND report = ?", list(keys)
            )

    def mark_delivered(self, keys: Iterable[ClaimKey]) -> None:
        delivered_at = clock.now().isoformat(timespec="seconds")
        with self._connection("mark alerts delivered in the state") as connection, connection:
            connection.executemany(
                "INSERT OR IGNORE INTO delivered VALUES (?, ?, ?)",
                [(*key, delivered_at) for key in dict.fromkeys(keys)],
            )

    def delivered(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        query = "SELECT 1 FROM delivered WHERE cluster_key = ? AND report = ?"
        with self._connection("read the state") as connection:
            return {key for key in keys if connection.execute(query, key).fetchone()}

    def begin_run(self, run_id: str, parts: int, started_at: datetime.datetime) -> str | None:
        """`INSERT OR IGNORE`: a retried dispatch keeps the first record. Runs (and their parts)
        recorded more than CLAIM_DAYS ago are deleted first. The pointer to the latest run moves
        in the same transaction, taken for writing at once (BEGIN IMMEDIATE)."""
        recorded_at = clock.now().isoformat()
        cutoff = claim_cutoff().isoformat()
        with self._connection("record the run in the state") as connection, connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "DELETE FROM run_parts WHERE run_id IN"
                " (SELECT run_id FROM runs WHERE recorded_at < ?)",
                (cutoff,),
            )
            connection.execute("DELETE FROM runs WHERE recorded_at < ?", (cutoff,))
            connection.execute(
                "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)",
                (run_id, parts, utc(started_at).isoformat(), recorded_at),
            )
            return advance_latest(run_id, partial(_replace_latest, connection))

    def digest_sent(self, run_id: str) -> None:
        with self._connection("record the run in the state") as connection, connection:
            connection.execute("BEGIN IMMEDIATE")
            replace_latest = partial(_replace_latest, connection)
            mark_sent(run_id, partial(_latest, connection), replace_latest)

    def finish_part(self, run_id: str, part: int, summary: Mapping[str, object]) -> None:
        finished_at = clock.now().isoformat()
        text = json.dumps(summary, separators=(",", ":"))
        with self._connection("record the run in the state") as connection, connection:
            connection.execute(
                "INSERT OR REPLACE INTO run_parts VALUES (?, ?, ?, ?)",
                (run_id, part, text, finished_at),
            )

    def run_progress(self, run_id: str, every_part: bool = False) -> RunProgress:
        with self._connection("read the run in the state") as connection, connection:
            connection.execute("BEGIN")
            row = connection.execute(
                "SELECT parts, started_at FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            rows = connection.execute(
                "SELECT part, summary FROM run_parts WHERE run_id = ?", (run_id,)
            )
            # Read inside the connection's context: a row mutguard did not write is a StoreError.
            finished = {int(part): json.loads(text) for part, text in rows}
            if row is None:
                return RunProgress(None, None, finished)
            return RunProgress(int(row[0]), datetime.datetime.fromisoformat(row[1]), finished)


def open_store(location: str) -> SqliteStateStore:
    """`--state-store sqlite[:PATH]` (mutguard.publish.stores): the file at PATH, else the
    default one."""
    return SqliteStateStore(Path(location) if location else None)


def _latest(connection: sqlite3.Connection) -> LatestRun | None:
    row = connection.execute(
        "SELECT run_id, previous, follow_up, sent FROM latest_run WHERE pointer = 1"
    ).fetchone()
    return None if row is None else LatestRun(row[0], row[1], row[2], bool(row[3]))


def _replace_latest(
    connection: sqlite3.Connection, expected: LatestRun | None, new: LatestRun
) -> LatestRun | None:
    """Inside the caller's write transaction, so nothing moves the pointer in between."""
    current = _latest(connection)
    if current != expected:
        return current
    connection.execute(
        "INSERT OR REPLACE INTO latest_run VALUES (1, ?, ?, ?, ?)",
        (new.run, new.previous, new.follow_up, int(new.sent)),
    )
    return None


def _load_cluster(connection: sqlite3.Connection, key: str) -> ClusterState | None:
    row = connection.execute(
        "SELECT readable, mut, mut_workload, mut_credential FROM clusters WHERE key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    rows = connection.execute(
        "SELECT check_id, resource, status, severity, suppressed FROM findings"
        " WHERE cluster_key = ?",
        (key,),
    )
    findings = {
        (check_id, resource): FindingState(Status(status), Severity(severity), bool(suppressed))
        for check_id, resource, status, severity, suppressed in rows
    }
    points = connection.execute(
        "SELECT generated_at, mut, mut_workload, mut_credential, upper_bound FROM history"
        " WHERE cluster_key = ?",
        (key,),
    )
    history = sorted(
        (
            MutPoint.from_dict(
                {
                    "generated_at": generated_at,
                    **dict(zip(MUT_FIELDS, values, strict=True)),
                    "upper_bound": bound.split(","),
                }
            )
            for generated_at, *values, bound in points
        ),
        key=lambda point: point.generated_at,
    )
    return ClusterState(
        readable=bool(row[0]),
        mut=Mut(row[1], row[2], row[3]),
        findings=findings,
        history=tuple(history),
    )


def _save_cluster(
    connection: sqlite3.Connection, key: str, state: ClusterState, saved_at: str
) -> None:
    connection.execute("DELETE FROM clusters WHERE key = ?", (key,))
    connection.execute(
        "INSERT INTO clusters VALUES (?, ?, ?, ?, ?, ?)",
        (key, int(state.readable), *(state.mut.value(n) for n in MUT_FIELDS), saved_at),
    )
    connection.executemany(
        "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?)",
        [
            (key, check_id, resource, s.status.value, s.severity.value, int(s.suppressed))
            for (check_id, resource), s in state.findings.items()
        ],
    )
    connection.executemany(
        "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                key,
                point.generated_at.isoformat(),
                *(point.mut.value(n) for n in MUT_FIELDS),
                ",".join(point.upper_bound),
            )
            for point in state.history
        ],
    )
