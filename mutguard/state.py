"""What mutguard remembers between runs, so that alerts say only what changed.

A run's state is, per cluster, its three MUT values and per finding (check_id, resource) its
status and severity. `changes()` compares the last state with a new report: FAIL findings that
are new, the ways a cluster got worse (a MUT value dropped, a failing finding's severity rose),
and findings that were resolved (were FAIL, now PASS or gone). A cluster with none of those has
nothing to say. `next_state()` is what to save after the alerts went out.

Suppressions (owner, reason, expiry date; from a YAML file) silence findings, never a MUT drop:
the MUT is the headline and no exception for one finding may hide that the cluster got weaker.
The state records which failing findings were suppressed, so an expired suppression alerts
again even though the finding itself did not change.

A cluster that could not be read this run keeps its last known findings and MUT (its state is
only marked unreadable): "we could not look" is neither "resolved" nor "unchanged", and the next
readable run is compared with what was last seen.

Stores: `StateStore` is the protocol (load the last state of some clusters, save new states,
claim and release alerts); `SqliteStateStore` is the default for the CLI (stdlib sqlite3, one
file). Cloud stores map `ClusterState.to_dict()` / `from_dict()` onto their items.

Claims: two runs publishing the same report at the same time both load the old state before
either saves, so both would send the same alerts. Before sending, a run claims each alert with a
conditional write (create only if absent) of a `ClaimKey`: (cluster key, the report's
generated_at and a fingerprint of the state it goes from and to; see dispatch.claim_keys). Of
the runs of one report exactly one wins; runs of different reports never meet. Claims are kept
CLAIM_DAYS, well past the end of any run that could contend.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mutguard import clock
from mutguard.errors import InputError, StoreError
from mutguard.models import ClusterReport, Finding, Report, Severity, Status
from mutguard.plugins import needs

FindingKey = tuple[str, str]  # (check_id, resource)
# (cluster key, or DIGEST_CLAIM for a whole digest; "<the report's generated_at>/<fingerprint>")
ClaimKey = tuple[str, str]
DIGEST_CLAIM = "digest"
CLAIM_DAYS = 7  # how long a claim is kept (the cloud stores let their TTL or lifecycle drop it)
MUT_FIELDS = ("mut", "mut_workload", "mut_credential")
STATE_PATH_ENV = "MUTGUARD_STATE_FILE"


def cluster_key(cluster: ClusterReport) -> str:
    """Stable identity of a cluster across runs. Built from values known before the cluster is
    parsed, so a cluster that cannot be read this run still has the same key."""
    return f"{cluster.provider.value}:{cluster.account}:{cluster.location}:{cluster.name}"


def finding_key(finding: Finding) -> FindingKey:
    return (finding.check_id, finding.resource)


@dataclass(frozen=True)
class Mut:
    """The three MUT values of a cluster (None: unknown)."""

    mut: int | None
    mut_workload: int | None
    mut_credential: int | None

    @classmethod
    def of(cls, cluster: ClusterReport) -> Mut:
        return cls(cluster.mut, cluster.mut_workload, cluster.mut_credential)

    def value(self, name: str) -> int | None:
        number: int | None = getattr(self, name)
        return number

    def dropped_in(self, after: Mut) -> tuple[str, ...]:
        """Which values are lower in `after` (unknown on either side is not a drop)."""
        return tuple(
            name
            for name in MUT_FIELDS
            if (before := self.value(name)) is not None
            and (now := after.value(name)) is not None
            and now < before
        )

    def lowest(self) -> int | None:
        known = [n for n in (self.mut, self.mut_workload, self.mut_credential) if n is not None]
        return min(known) if known else None


@dataclass(frozen=True)
class FindingState:
    status: Status
    severity: Severity
    suppressed: bool = False


@dataclass(frozen=True)
class ClusterState:
    readable: bool
    mut: Mut
    findings: Mapping[FindingKey, FindingState] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form, for stores that keep one document per cluster."""
        return {
            "readable": self.readable,
            **{name: self.mut.value(name) for name in MUT_FIELDS},
            "findings": [
                {
                    "check_id": check_id,
                    "resource": resource,
                    "status": state.status.value,
                    "severity": state.severity.value,
                    "suppressed": state.suppressed,
                }
                for (check_id, resource), state in sorted(self.findings.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterState:
        findings = {
            (item["check_id"], item["resource"]): FindingState(
                Status(item["status"]), Severity(item["severity"]), bool(item["suppressed"])
            )
            for item in data["findings"]
        }
        mut = Mut(*(data[name] for name in MUT_FIELDS))
        return cls(readable=bool(data["readable"]), mut=mut, findings=findings)


# --- Suppressions -------------------------------------------------------------------------


class SuppressionError(InputError):
    """A suppressions file that cannot be used; the message names the entry and the field."""


class Suppression(BaseModel):
    """One accepted risk: findings of `check_id` (optionally only `resource`, only `cluster`)
    are not alerted until the end of `expires` (UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    check_id: str = Field(min_length=1)
    resource: str | None = Field(default=None, min_length=1, description="exact; omit for all")
    cluster: str | None = Field(
        default=None, min_length=1, description="name, arn_or_id or cluster key; omit for all"
    )
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: datetime.date

    def active(self, today: datetime.date) -> bool:
        return today <= self.expires

    def covers(self, cluster: ClusterReport, finding: Finding) -> bool:
        return (
            self.check_id == finding.check_id
            and self.resource in (None, finding.resource)
            and self.cluster in (None, cluster.name, cluster.arn_or_id, cluster_key(cluster))
        )


def parse_suppressions(data: Any, origin: str = "suppressions") -> list[Suppression]:
    """`{"suppressions": [ {check_id, owner, reason, expires, resource?, cluster?}, ... ]}`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("suppressions"), list):
        raise SuppressionError(f"{origin}: expected a mapping with a 'suppressions' list")
    if unknown := sorted(set(data) - {"suppressions"}):
        raise SuppressionError(f"{origin}: unknown top-level key(s): {', '.join(unknown)}")
    return [_suppression(entry, index, origin) for index, entry in enumerate(data["suppressions"])]


def _suppression(entry: Any, index: int, origin: str) -> Suppression:
    label = f"{origin}: suppression #{index + 1}"
    if isinstance(entry, Mapping) and entry.get("check_id"):
        label += f" ({entry['check_id']})"
    try:
        return Suppression.model_validate(entry)
    except ValidationError as err:
        problems = "; ".join(_problem(error) for error in err.errors())
        raise SuppressionError(f"{label}: {problems}") from None


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "entry"
    if error["type"] == "missing":
        return f"{where} is required"
    return f"{where}: {error['msg']}"


def load_suppressions(path: Path) -> list[Suppression]:
    return parse_suppressions_yaml(read_text_file(path, SuppressionError), str(path))


def parse_suppressions_yaml(text: str, origin: str) -> list[Suppression]:
    return parse_suppressions(read_yaml(text, origin, SuppressionError), origin)


def read_text_file(path: Path, error: type[InputError] = InputError) -> str:
    """The UTF-8 text of a file the user named; `error` names the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (invalid byte at offset {err.start})") from None
    except OSError as err:
        raise error(f"{path}: cannot be read: {err.strerror or err}") from None


def read_yaml(text: str, origin: str, error: type[InputError] = InputError) -> Any:
    """One YAML document of a configuration file, parsed safely; `error` names `origin`.

    Aliases (`*name`) are refused: nested aliases make a few lines expand to gigabytes ("billion
    laughs") and configuration files have no need of them. Dates stay text, so that a bad one
    (`2026-13-01`) is reported by the model that knows which entry it belongs to."""
    with needs(f"reading {origin}", "notify", "PyYAML"):
        import yaml  # PyYAML: only when a configuration file is used

    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, _yaml_loader())):
            raise error(f"{origin}: YAML aliases (*name) are not accepted")
        return yaml.load(text, _yaml_loader())  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        reason = " ".join(str(err).split())  # PyYAML's messages span lines; errors are one line
        raise error(f"{origin}: not valid YAML: {reason}") from None
    except RecursionError:
        raise error(f"{origin}: not valid YAML: nested too deeply") from None


@functools.cache
def _yaml_loader() -> Any:
    import yaml

    class TextDatesLoader(yaml.SafeLoader):
        """SafeLoader that keeps timestamps as the strings they were written as."""

    TextDatesLoader.add_constructor(
        "tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str
    )
    return TextDatesLoader


def stored_suppressions(store: StateStore) -> list[Suppression]:
    """The suppressions document kept in the store (`mutguard suppressions push`), if any."""
    text = store.load_suppressions()
    return [] if text is None else parse_suppressions_yaml(text, "the state store's suppressions")


def _suppressed(
    cluster: ClusterReport,
    finding: Finding,
    suppressions: Sequence[Suppression],
    today: datetime.date,
) -> bool:
    return any(s.active(today) and s.covers(cluster, finding) for s in suppressions)


# --- Changes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeverityRise:
    finding: Finding
    before: Severity


@dataclass(frozen=True)
class ResolvedFinding:
    check_id: str
    resource: str
    severity: Severity
    now: Status | None  # None: the finding is gone (e.g. the workload was deleted)


@dataclass(frozen=True)
class ClusterChange:
    """What changed in one cluster since the last run."""

    key: str
    cluster: ClusterReport
    before: Mut | None  # None: the cluster was never seen before (first run)
    new: tuple[Finding, ...] = ()
    severity_rose: tuple[SeverityRise, ...] = ()
    resolved: tuple[ResolvedFinding, ...] = ()
    became_unreadable: bool = False

    @property
    def after(self) -> Mut:
        return Mut.of(self.cluster)

    @property
    def first_seen(self) -> bool:
        return self.before is None

    @property
    def mut_dropped(self) -> tuple[str, ...]:
        return self.before.dropped_in(self.after) if self.before else ()

    @property
    def worsened(self) -> bool:
        return bool(self.mut_dropped or self.severity_rose)

    @property
    def has_news(self) -> bool:
        return bool(self.new or self.worsened or self.resolved or self.became_unreadable)


def changes(
    previous: Mapping[str, ClusterState],
    report: Report,
    suppressions: Sequence[Suppression] = (),
) -> list[ClusterChange]:
    """One ClusterChange per cluster of the report, in report order; `has_news` says whether
    there is anything to tell. Suppressions are judged on the report's date (mutguard/clock.py)."""
    day = report.generated_at.date()
    return [
        _cluster_change(previous.get(cluster_key(c)), c, suppressions, day) for c in report.clusters
    ]


def _cluster_change(
    before: ClusterState | None,
    cluster: ClusterReport,
    suppressions: Sequence[Suppression],
    today: datetime.date,
) -> ClusterChange:
    key = cluster_key(cluster)
    if cluster.mut is None:
        # Nothing was read: no finding can be called new or resolved.
        news = before is None or before.readable
        return ClusterChange(key, cluster, before.mut if before else None, became_unreadable=news)
    seen = before.findings if before else {}
    new: list[Finding] = []
    rose: list[SeverityRise] = []
    for finding in cluster.findings:
        if finding.status is not Status.FAIL or _suppressed(cluster, finding, suppressions, today):
            continue
        last = seen.get(finding_key(finding))
        if last is None or last.status is not Status.FAIL or last.suppressed:
            new.append(finding)
        elif finding.severity.rank > last.severity.rank:
            rose.append(SeverityRise(finding, last.severity))
    return ClusterChange(
        key=key,
        cluster=cluster,
        before=before.mut if before else None,
        new=tuple(new),
        severity_rose=tuple(rose),
        resolved=_resolved(seen, cluster),
    )


def _resolved(
    seen: Mapping[FindingKey, FindingState], cluster: ClusterReport
) -> tuple[ResolvedFinding, ...]:
    now = {finding_key(f): f.status for f in cluster.findings}
    return tuple(
        ResolvedFinding(check_id, resource, last.severity, now.get((check_id, resource)))
        for (check_id, resource), last in seen.items()
        # Suppressed findings were never alerted, so their end is not news either.
        if last.status is Status.FAIL
        and not last.suppressed
        and now.get((check_id, resource)) in (Status.PASS, None)
    )


def next_state(
    previous: Mapping[str, ClusterState],
    report: Report,
    suppressions: Sequence[Suppression] = (),
) -> dict[str, ClusterState]:
    """The state to save for every cluster of the report (other clusters are left as they are:
    a run that scanned fewer clusters says nothing about the others)."""
    day = report.generated_at.date()
    return {
        cluster_key(c): _cluster_state(previous.get(cluster_key(c)), c, suppressions, day)
        for c in report.clusters
    }


def _cluster_state(
    before: ClusterState | None,
    cluster: ClusterReport,
    suppressions: Sequence[Suppression],
    today: datetime.date,
) -> ClusterState:
    if cluster.mut is None:
        if before is None:
            return ClusterState(readable=False, mut=Mut.of(cluster))
        return replace(before, readable=False)
    findings = {
        finding_key(f): FindingState(
            f.status,
            f.severity,
            f.status is Status.FAIL and _suppressed(cluster, f, suppressions, today),
        )
        for f in cluster.findings
    }
    return ClusterState(readable=True, mut=Mut.of(cluster), findings=findings)


# --- Stores -------------------------------------------------------------------------------


class StateStore(Protocol):
    def load(self, keys: Iterable[str]) -> dict[str, ClusterState]:
        """The last saved state of each of these clusters that has one."""
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
        with self._connection("read the state") as connection:
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
        """`INSERT OR IGNORE` in one transaction: a row inserted is a claim won. Claims older
        than CLAIM_DAYS are deleted first."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return set()
        claimed_at = clock.now().isoformat(timespec="seconds")
        cutoff = claim_cutoff().isoformat(timespec="seconds")
        won: set[ClaimKey] = set()
        with self._connection("claim alerts in the state") as connection, connection:
            connection.execute("DELETE FROM claims WHERE claimed_at < ?", (cutoff,))
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


def open_store(location: str) -> SqliteStateStore:
    """`--state-store sqlite[:PATH]` (mutguard.publish.stores): the file at PATH, else the
    default one."""
    return SqliteStateStore(Path(location) if location else None)


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
    return ClusterState(readable=bool(row[0]), mut=Mut(row[1], row[2], row[3]), findings=findings)


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
