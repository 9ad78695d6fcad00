"""Google Security Command Center on 127.0.0.1: real gRPC,
google.cloud.securitycenter.v2.SecurityCenter.

As tests/servers/pubsub.py: a grpc generic handler, (de)serialising with the request and
response types of google.cloud.securitycenter_v2. The real SecurityCenterClient reaches it
through the sink's `endpoint` option set to `endpoint` (`http://`: an insecure channel, no
credentials). UpdateFinding, SetFindingState and ListFindings are served; any other method
answers UNIMPLEMENTED.

It answers as the v2 reference documents them:
- UpdateFinding creates or updates (an upsert). The finding's name is
  `organizations|folders|projects/ID/sources/SOURCE[/locations/LOCATION]/findings/FINDING` (no
  location: global); the source must exist (NOT_FOUND otherwise); a new finding's id must be
  alphanumeric and 1 to 32 characters, and it needs a category, a resource_name and an
  event_time (INVALID_ARGUMENT otherwise). Without an update mask an update replaces every
  mutable field and the source_properties; category and resource_name are immutable (changing
  them is INVALID_ARGUMENT). Output-only fields sent in (state, create_time, canonical_name)
  are ignored: a new finding's state is STATE_UNSPECIFIED until SetFindingState.
- An event_time later than the server's clock (`clock`, by default the real one) is
  INVALID_ARGUMENT; a new finding's create_time is that clock's time.
- source_properties keys must start with a letter and hold only letters, digits and
  underscores, 1 to 255 characters (INVALID_ARGUMENT otherwise).
- SetFindingState sets ACTIVE or INACTIVE (anything else: INVALID_ARGUMENT) on a finding that
  exists (NOT_FOUND otherwise).
- ListFindings lists a source's findings in a location (`sources/-`: every source), in one
  page.

`fail(code, times)` makes the next `times` calls fail with that status before it answers again,
`fail_on(method, code, times)` the next calls of one method; `fault_message` is the status
message of both. `calls` counts the calls of each method.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Callable

import grpc
from google.cloud.securitycenter_v2 import (
    Finding,
    ListFindingsRequest,
    ListFindingsResponse,
    SetFindingStateRequest,
    UpdateFindingRequest,
)

from .grpc_serving import GrpcServing

SERVICE = "google.cloud.securitycenter.v2.SecurityCenter"
ORGANIZATION = "123456789012"
SOURCE = f"organizations/{ORGANIZATION}/sources/4242"
FINDING_NAME = re.compile(
    r"^(?P<source>(organizations|folders|projects)/[^/]+/sources/[^/]+)"
    r"(/locations/(?P<location>[^/]+))?/findings/(?P<id>[^/]+)$"
)
LIST_PARENT = re.compile(
    r"^(?P<owner>(organizations|folders|projects)/[^/]+)/sources/(?P<source>[^/]+)"
    r"(/locations/(?P<location>[^/]+))?$"
)
FINDING_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
PROPERTY_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")
IMMUTABLE = ("category", "resource_name")
OUTPUT_ONLY = ("state", "create_time", "canonical_name")


def _location_of(match: re.Match[str]) -> str:
    return match.group("location") or "global"


class SccServer(GrpcServing):
    """Use as a context manager; `endpoint` goes into the sink's `endpoint` option."""

    SERVICE = SERVICE

    def __init__(
        self,
        sources: tuple[str, ...] = (SOURCE,),
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        super().__init__()
        self._sources = set(sources)
        self._clock = clock
        # By (source, location, finding id).
        self._findings: dict[tuple[str, str, str], Finding] = {}
        self.calls: Counter[str] = Counter()
        self._method_faults: dict[str, list[grpc.StatusCode]] = {}
        self.fault_message = "the service is unavailable (test fault)"

    @property
    def endpoint(self) -> str:
        return f"http://{self._address()}"

    @property
    def findings(self) -> dict[str, Finding]:
        """Every finding held, by name (with its location), as ListFindings returns them."""
        with self._lock:
            return {f.name: _copy(f) for f in self._findings.values()}

    def _methods(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "UpdateFinding": grpc.unary_unary_rpc_method_handler(
                self._update_finding,
                request_deserializer=UpdateFindingRequest.deserialize,
                response_serializer=Finding.serialize,
            ),
            "SetFindingState": grpc.unary_unary_rpc_method_handler(
                self._set_finding_state,
                request_deserializer=SetFindingStateRequest.deserialize,
                response_serializer=Finding.serialize,
            ),
            "ListFindings": grpc.unary_unary_rpc_method_handler(
                self._list_findings,
                request_deserializer=ListFindingsRequest.deserialize,
                response_serializer=ListFindingsResponse.serialize,
            ),
        }

    def fail_on(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        """The next `times` calls of `method` fail with `code`."""
        with self._lock:
            self._method_faults.setdefault(method, []).extend([code] * times)

    def _admit(self, method: str, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls[method] += 1
            fault = self._take_fault()
            if fault is None and (waiting := self._method_faults.get(method)):
                fault = waiting.pop(0)
        if fault is not None:
            context.abort(fault, self.fault_message)

    def _update_finding(
        self, request: UpdateFindingRequest, context: grpc.ServicerContext
    ) -> Finding:
        self._admit("UpdateFinding", context)
        sent = request.finding
        match = FINDING_NAME.match(sent.name)
        if match is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid finding name {sent.name!r}")
        key = (match.group("source"), _location_of(match), match.group("id"))
        if key[0] not in self._sources:
            context.abort(grpc.StatusCode.NOT_FOUND, f"source {key[0]} not found")
        if problem := _finding_problem(sent, self._clock()):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        name = f"{key[0]}/locations/{key[1]}/findings/{key[2]}"
        with self._lock:
            held = self._findings.get(key)
        if held is None:
            if problem := _creation_problem(key[2], sent):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            stored = _copy(sent)
            stored.state = Finding.State.STATE_UNSPECIFIED
            stored.create_time = self._clock()
        else:
            for field in IMMUTABLE:
                if getattr(sent, field) and getattr(sent, field) != getattr(held, field):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field} is immutable")
            stored = _copy(sent)
            for field in (*OUTPUT_ONLY, *IMMUTABLE):
                setattr(stored, field, getattr(held, field))
        stored.name = name
        stored.canonical_name = name
        stored.parent = f"{key[0]}/locations/{key[1]}"
        with self._lock:
            self._findings[key] = stored
        return _copy(stored)

    def _set_finding_state(
        self, request: SetFindingStateRequest, context: grpc.ServicerContext
    ) -> Finding:
        self._admit("SetFindingState", context)
        match = FINDING_NAME.match(request.name)
        if match is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid name {request.name!r}")
        if request.state not in (Finding.State.ACTIVE, Finding.State.INACTIVE):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "state must be ACTIVE or INACTIVE")
        key = (match.group("source"), _location_of(match), match.group("id"))
        with self._lock:
            held = self._findings.get(key)
            if held is not None:
                held.state = request.state
                held = _copy(held)
        if held is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"finding {request.name} not found")
        return held

    def _list_findings(
        self, request: ListFindingsRequest, context: grpc.ServicerContext
    ) -> ListFindingsResponse:
        self._admit("ListFindings", context)
        match = LIST_PARENT.match(request.parent)
        if match is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {request.parent!r}")
        owner = f"{match.group('owner')}/sources/"
        source = owner + match.group("source")
        location = _location_of(match)
        every_source = match.group("source") == "-"
        with self._lock:
            found = [
                _copy(f)
                for (held_source, held_location, _), f in sorted(self._findings.items())
                if held_location == location
                and (held_source == source or (every_source and held_source.startswith(owner)))
            ]
        results = [ListFindingsResponse.ListFindingsResult(finding=f) for f in found]
        return ListFindingsResponse(list_findings_results=results, total_size=len(results))


def _copy(finding: Finding) -> Finding:
    """A copy that shares nothing with `finding` (Finding(message) would wrap the same one)."""
    return Finding.deserialize(Finding.serialize(finding))


def _finding_problem(finding: Finding, now: datetime.datetime) -> str | None:
    """Why SCC refuses this finding whether it is new or not (None: it does not)."""
    if "event_time" in finding and finding.event_time > now:
        return "event_time must not be later than the current time"
    for key in finding.source_properties:
        if not PROPERTY_KEY.match(key):
            return f"invalid source_properties key {key[:40]!r}"
    return None


def _creation_problem(finding_id: str, finding: Finding) -> str | None:
    if not FINDING_ID.match(finding_id):
        return "finding id must be alphanumeric and 1 to 32 characters long"
    for field in ("category", "resource_name", "event_time"):
        if field not in finding:
            return f"{field} is required"
    return None
