"""The one invoke payload of every mutguard function (docs/architecture.md, Invoke payload).

    {"action": "scan", "targets": [{"provider": "eks", "account": "123456789012",
      "region": "eu-west-1", "cluster": "prod"}], "publish": true, "sinks": ["slack"],
     "include_rbac": true}

- action `scan` scans the targets now and returns the report; `dispatch` fans the targets (or
  the configured ones, when it names none) out through the cloud's queue, one `scan` message per
  provider, account and region, and returns how many it queued.
- `account` is the AWS account id, GCP project id or Azure subscription id; `region` the AWS
  region, GCP region/zone or Azure region (none: every one); `cluster` one cluster's name.
- `publish` sends what changed to `sinks` (none named: the function's configured sinks);
  `digest` sends the whole summary instead; `include_rbac` also reads RBAC and workloads
  through each cluster's API server.
- `run` is set by a dispatcher on the scans it queues, never by a sender:
  `{"id": RUN_ID, "part": i, "parts": n, "started_at": ISO_8601}`, this scan's place in a
  scheduled run and when the run started, so that the worker finishing the last part sends one
  fleet digest (mutguard/publish/fleet.py).
- action `finish_run` is a dispatcher's follow-up for the run before its own, whose digest was
  not sent (a part never finished): `{"action": "finish_run", "publish": true, "run": {"id":
  RUN_ID}}`, no targets. The worker sends that run's digest of what finished, unless it was
  sent already.

Unknown keys and bad values raise PayloadError naming the field (a 400-style error), and nothing
runs. The same model is the message a dispatcher queues, so a worker validates what it receives.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

from mutguard.provider_api import Invoke
from mutguard.providers import PROVIDERS

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_TARGETS = 1000
MAX_PARTS = 100_000  # scans one run may queue: an organization's accounts times its regions
SHOWN_VALUE_LENGTH = 40
ACTIONS = ("scan", "dispatch", "finish_run")
REQUIRED = "Field required"
NOT_A_STRING = "Input should be a valid string"
NOT_A_LIST = "Input should be a valid list"
NOT_UNICODE = "Input should be a valid string, unable to parse raw data as a unicode string"


class PayloadError(ValueError):
    """A payload that cannot be run; `field` is its dotted path, e.g. `targets[0].provider`."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "field": self.field, "message": self.message}}


@dataclass(frozen=True)
class Target:
    """One provider account, region and cluster to scan. It checks itself wherever it is made
    (a dispatcher makes them from an organization's accounts): PayloadError names its field."""

    provider: str
    account: str
    region: str | None = None
    cluster: str | None = None

    def __post_init__(self) -> None:
        account = _invoke_of(self.provider).account
        self._keep_string("provider")
        value = self._keep_string("account")
        if not re.match(account.pattern, value):
            raise PayloadError("account", f"{_shown(value)} is not {account.what}")
        for name in ("region", "cluster"):
            if getattr(self, name) is None:
                continue
            value = self._keep_string(name)
            if not NAME.match(value):
                raise PayloadError(name, f"{_shown(value)} is not a region or cluster name")

    def _keep_string(self, name: str) -> str:
        """The field as it is kept: a str (not a subclass, such as an enum's member)."""
        value = _string(getattr(self, name), name)
        object.__setattr__(self, name, value)
        return value

    @property
    def group(self) -> tuple[str, str, str | None]:
        """What one queued scan covers: one provider, account and region."""
        return (self.provider, self.account, self.region)

    @property
    def clusters(self) -> tuple[str, ...]:
        """The cluster names it asks for; none: every cluster of its account and region."""
        return (self.cluster,) if self.cluster else ()

    @property
    def label(self) -> str:
        parts = [self.provider, self.account, self.region, self.cluster]
        return ":".join(p for p in parts if p)


@dataclass(frozen=True)
class RunPart:
    """Which part of which scheduled run a queued scan is: part `part` of `parts`, of the run
    started at `started_at` (ISO 8601 with its UTC offset)."""

    id: str
    part: int
    parts: int
    started_at: str

    @property
    def started(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.started_at)

    @property
    def key(self) -> str:
        """The same for every delivery of this part's message, and for no other part."""
        return f"{self.id}/{self.part}"


@dataclass(frozen=True)
class RunToFinish:
    """The scheduled run a `finish_run` follow-up sends the digest of."""

    id: str


@dataclass(frozen=True)
class InvokePayload:
    """What parse_payload accepts. Checked there and not when made: a dispatcher may replace its
    targets with more than a sender may name (an organization's), which fan_out splits up."""

    action: Literal["scan", "dispatch", "finish_run"] = "scan"
    targets: list[Target] = field(default_factory=list)
    publish: bool = False
    sinks: list[str] | None = None
    include_rbac: bool = True
    digest: bool = False
    run: RunPart | RunToFinish | None = None

    def to_message(self) -> str:
        """The payload as the JSON a dispatcher queues, leaving out what is at its default."""
        message = json.dumps(
            _without_defaults(self),
            default=_without_defaults,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        message.encode()  # UnicodeEncodeError for a lone surrogate, which no queue can carry
        return message


def _without_defaults(instance: Target | RunPart | RunToFinish | InvokePayload) -> dict[str, Any]:
    shown = {}
    for spec in fields(instance):
        value = getattr(instance, spec.name)
        default = spec.default if spec.default_factory is MISSING else spec.default_factory()
        if value != default:
            shown[spec.name] = value
    return shown


def _invoke(name: str) -> Invoke | None:
    """How the functions scan the provider called exactly `name`: a payload names providers by
    their own names (`eks`), which are the report's and the queued groups', not by the command
    line's aliases (`aws`)."""
    if name not in PROVIDERS:
        return None
    plugin = PROVIDERS.get(name)
    return plugin.invoke if plugin.name == name else None


def _invoke_of(provider: Any) -> Invoke:
    """The provider's Invoke, or PayloadError listing those a payload may name."""
    invoke = _invoke(provider) if isinstance(provider, str) else None
    if invoke is not None:
        return invoke
    choices = [f"'{plugin.name}'" for plugin in PROVIDERS.entries() if plugin.invoke]
    listed = f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else choices[0]
    raise PayloadError("provider", f"Input should be {listed}")


def parse_payload(raw: bytes | str | Mapping[str, Any] | None) -> InvokePayload:
    """The payload, or PayloadError naming the first bad field: the fields in the order of
    InvokePayload's (a target's in Target's), then the keys that are none of them."""
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError("", f"the payload is not JSON: {exc}") from None
        except RecursionError:  # the parser recurses once per level: "[" * 100000 overflows it
            raise PayloadError("", "the payload is nested too deeply to be a payload") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise PayloadError("", f"the payload is a JSON object, not {type(raw).__name__}")
    return _payload(dict(raw))


def _payload(raw: dict[Any, Any]) -> InvokePayload:
    _keys_are_unicode(raw, "")
    action = raw.get("action", "scan")
    if type(action) is str and not _is_unicode(action):
        raise PayloadError("action", NOT_UNICODE)
    if not isinstance(action, str) or action not in ACTIONS:
        raise PayloadError("action", "Input should be 'scan', 'dispatch' or 'finish_run'")
    action = _string(action, "action")
    targets = raw.get("targets", [])
    if not isinstance(targets, list):
        raise PayloadError("targets", NOT_A_LIST)
    if len(targets) > MAX_TARGETS:
        raise PayloadError(
            "targets",
            f"List should have at most {MAX_TARGETS} items after validation, not {len(targets)}",
        )
    targets = [_target(value, _join("targets", index)) for index, value in enumerate(targets)]
    if action == "scan" and not targets:
        raise PayloadError(
            "targets", "a scan names its targets (a dispatch may use the configured ones)"
        )
    if action == "finish_run" and targets:
        raise PayloadError("targets", "a finish_run scans nothing: it names no targets")
    publish = _boolean(raw, "publish", False)
    sinks = raw.get("sinks")
    if sinks is not None:
        if not isinstance(sinks, list):
            raise PayloadError("sinks", NOT_A_LIST)
        sinks = [_string(sink, _join("sinks", index)) for index, sink in enumerate(sinks)]
        if not publish:
            raise PayloadError("sinks", "sinks are only used with publish: true")
    payload = InvokePayload(
        action=action,
        targets=targets,
        publish=publish,
        sinks=sinks,
        include_rbac=_boolean(raw, "include_rbac", True),
        digest=_boolean(raw, "digest", False),
        run=_finish(raw, publish) if action == "finish_run" else _run_part(raw, action, publish),
    )
    _only_fields(raw, InvokePayload, "")
    return payload


def _finish(payload: dict[Any, Any], publish: bool) -> RunToFinish:
    """The run a follow-up finishes: `{"id"}` only, with publish: true (its digest goes to the
    sinks)."""
    if not publish:
        raise PayloadError("publish", "a finish_run sends a digest: publish: true")
    if "run" not in payload:
        raise PayloadError("run", f"{REQUIRED}: a finish_run names the run it finishes")
    raw = payload["run"]
    run = RunToFinish(_run_id(raw))
    _only_fields(raw, RunToFinish, "run")
    return run


def _run_part(payload: dict[Any, Any], action: str, publish: bool) -> RunPart | None:
    """The scan's place in a scheduled run; PayloadError names its field under `run`."""
    raw = payload.get("run")
    if raw is None:
        return None
    if action != "scan" or not publish:
        raise PayloadError("run", "only a dispatcher's queued scans with publish: true carry one")
    run_id = _run_id(raw)
    numbers = {}
    for name in ("part", "parts"):
        if name not in raw:
            raise PayloadError(f"run.{name}", REQUIRED)
        value = raw[name]
        if type(value) is not int or not 1 <= value <= MAX_PARTS:
            raise PayloadError(
                f"run.{name}", f"Input should be a whole number from 1 to {MAX_PARTS}"
            )
        numbers[name] = value
    if numbers["part"] > numbers["parts"]:
        raise PayloadError(
            "run.part", f"part {numbers['part']} of {numbers['parts']} is past the last"
        )
    _only_fields(raw, RunPart, "run")
    return RunPart(run_id, numbers["part"], numbers["parts"], _started_at(raw))


def _started_at(raw: dict[Any, Any]) -> str:
    """The run's `started_at`: an ISO 8601 time with its UTC offset."""
    if "started_at" not in raw:
        raise PayloadError("run.started_at", REQUIRED)
    text = _string(raw["started_at"], "run.started_at")
    try:
        offset = datetime.datetime.fromisoformat(text).utcoffset()
    except ValueError:
        offset = None
    if offset is None:
        raise PayloadError(
            "run.started_at", f"{_shown(text)} is not an ISO 8601 time with an offset"
        )
    return text


def _run_id(raw: Any) -> str:
    """The `run` object's id; PayloadError names its field under `run`."""
    if not isinstance(raw, dict):
        raise PayloadError("run", "Input should be a valid dictionary")
    _keys_are_unicode(raw, "run")
    if "id" not in raw:
        raise PayloadError("run.id", REQUIRED)
    run_id = _string(raw["id"], "run.id")
    if not RUN_ID.match(run_id):
        raise PayloadError("run.id", f"{_shown(run_id)} is not a run id")
    return run_id


def _target(raw: Any, path: str) -> Target:
    """A target of the payload's list; PayloadError names its field under `path`."""
    if isinstance(raw, Target):
        return raw
    if not isinstance(raw, dict):
        raise PayloadError(path, "Input should be a valid dictionary or instance of Target")
    _keys_are_unicode(raw, path)
    try:
        if "provider" not in raw:
            raise PayloadError("provider", REQUIRED)
        if "account" not in raw:
            _invoke_of(raw["provider"])  # a bad provider is the first error, as it is listed first
            raise PayloadError("account", REQUIRED)
        target = Target(
            **{spec.name: raw[spec.name] for spec in fields(Target) if spec.name in raw}
        )
    except PayloadError as exc:
        raise PayloadError(_join(path, exc.field), exc.message) from None
    _only_fields(raw, Target, path)
    return target


def _string(value: Any, path: str) -> str:
    """A string field's value as a str: a subclass's (an enum member's) is copied, unless a lone
    surrogate keeps it from being text."""
    if type(value) is str:
        return value
    if not isinstance(value, str):
        raise PayloadError(path, NOT_A_STRING)
    if not _is_unicode(value):
        raise PayloadError(path, NOT_UNICODE)
    return str.__str__(value)


def _boolean(raw: dict[Any, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise PayloadError(name, "Input should be a valid boolean")
    return value


def _is_unicode(text: str) -> bool:
    """Whether `text` has no lone surrogate (JSON's `"\\ud800"` makes one)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _keys_are_unicode(raw: dict[Any, Any], path: str) -> None:
    """PayloadError naming the object, before any of its fields, for a key that is no text."""
    if not all(_is_unicode(key) for key in raw if type(key) is str):
        raise PayloadError(path, NOT_UNICODE)


def _only_fields(raw: dict[Any, Any], model: type, path: str) -> None:
    """PayloadError for the first key of `raw` that is not a field of `model`."""
    names = {spec.name for spec in fields(model)}
    for key in raw:
        if not isinstance(key, str):
            raise PayloadError(_join(path, _key_location(key)), "Keys should be strings")
        if key not in names:
            raise PayloadError(_join(path, key), "unknown field")


def _key_location(key: Any) -> int | str:
    """How a key that is not a string is named in a field path: an integer as an index
    (`[3]`), anything else by its repr."""
    if isinstance(key, int) and -(2**63) <= key < 2**63:
        return int(key)
    return repr(key)


def _shown(value: str) -> str:
    """A rejected value as an error may quote it: short, since errors are logged and a payload
    that is not what it should be may hold anything."""
    return repr(value) if len(value) <= SHOWN_VALUE_LENGTH else f"{value[:SHOWN_VALUE_LENGTH]!r}…"


def _join(path: str, part: int | str) -> str:
    """The field path `path` followed by a list index or a key: `targets[0]`, `targets[0].zone`."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part
