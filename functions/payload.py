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

Unknown keys and bad values raise PayloadError naming the field (a 400-style error), and nothing
runs. The same model is the message a dispatcher queues, so a worker validates what it receives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from mutguard.provider_api import Invoke
from mutguard.providers import PROVIDERS

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
MAX_TARGETS = 1000
SHOWN_VALUE_LENGTH = 40


class PayloadError(ValueError):
    """A payload that cannot be run; `field` is its dotted path, e.g. `targets[0].provider`."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "field": self.field, "message": self.message}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Target(_Strict):
    provider: str
    account: str
    region: str | None = None
    cluster: str | None = None

    @field_validator("provider", mode="before")
    @classmethod
    def _provider_scans_in_functions(cls, value: Any) -> Any:
        if isinstance(value, str) and _invoke(value) is not None:
            return value
        choices = [f"'{plugin.name}'" for plugin in PROVIDERS.entries() if plugin.invoke]
        listed = f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else choices[0]
        raise ValueError(f"Input should be {listed}")

    @field_validator("account")
    @classmethod
    def _account_fits_provider(cls, value: str, info: ValidationInfo) -> str:
        provider = info.data.get("provider")
        if provider is not None:  # else the provider's own error is the one to report
            account = _invoke(provider).account
            if not re.match(account.pattern, value):
                raise ValueError(f"{_shown(value)} is not {account.what}")
        return value

    @field_validator("region", "cluster")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError(f"{_shown(value)} is not a region or cluster name")
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


class InvokePayload(_Strict):
    action: Literal["scan", "dispatch"] = "scan"
    targets: list[Target] = Field(
        default_factory=list, max_length=MAX_TARGETS, validate_default=True
    )
    publish: bool = False
    sinks: list[str] | None = None
    include_rbac: bool = True
    digest: bool = False

    @field_validator("targets")
    @classmethod
    def _scan_needs_targets(cls, value: list[Target], info: ValidationInfo) -> list[Target]:
        if info.data.get("action", "scan") == "scan" and not value:
            raise ValueError("a scan names its targets (a dispatch may use the configured ones)")
        return value

    @field_validator("sinks")
    @classmethod
    def _sinks_need_publish(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and not info.data.get("publish"):
            raise ValueError("sinks are only used with publish: true")
        return value

    def to_message(self) -> str:
        return self.model_dump_json(exclude_defaults=True)


def _invoke(name: str) -> Invoke | None:
    """How the functions scan the provider called exactly `name`: a payload names providers by
    their own names (`eks`), which are the report's and the queued groups', not by the command
    line's aliases (`aws`)."""
    if name not in PROVIDERS:
        return None
    plugin = PROVIDERS.get(name)
    return plugin.invoke if plugin.name == name else None


def parse_payload(raw: bytes | str | Mapping[str, Any] | None) -> InvokePayload:
    """The payload, or PayloadError naming the first bad field."""
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
    try:
        return InvokePayload.model_validate(dict(raw))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise PayloadError(_field(error["loc"]), _message(error)) from None


def _shown(value: str) -> str:
    """A rejected value as an error may quote it: short, since errors are logged and a payload
    that is not what it should be may hold anything."""
    return repr(value) if len(value) <= SHOWN_VALUE_LENGTH else f"{value[:SHOWN_VALUE_LENGTH]!r}…"


def _field(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
