"""Live EKS collection with boto3: every cluster of every region of every account, read-only.

Accounts, regions and clusters are read in parallel (providers/tasks.py). Each region of each
account is a lane of its own: at most `concurrency` EKS calls to it at a time, halved while it
throttles and grown back as it answers, so ten regions are read at once and one slow or
throttling region holds back only its own calls. Its clusters' API servers are read in another
lane per region, as many at a time. boto3 clients are thread-safe, sessions are not, so clients
are made under a lock and shared; botocore retries a throttled call with its standard backoff.
A failing account or region becomes a ScanError naming it; a failing cluster becomes a
ClusterSource with the error, so the other clusters still report.

A cluster costs the calls that can apply to it: DescribeCluster, then ListAccessEntries (and
per entry DescribeAccessEntry and ListAssociatedAccessPolicies) unless its authenticationMode is
CONFIG_MAP, where access entries do not exist and the API refuses the call, and
ListIdentityProviderConfigs (and per config DescribeIdentityProviderConfig), which nothing in
DescribeCluster can stand in for.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from mutguard import __version__
from mutguard.errors import InputError
from mutguard.providers.tasks import Abandoned, Deadline, Item, Lane, Task, run_tasks, stopped
from mutguard.sources import (
    ACCESS_ENTRIES_DOC,
    AWS_AUTH_DOC,
    CLUSTER_DOC,
    IDENTITY_PROVIDERS_DOC,
    ClusterSource,
    Provider,
    ScanError,
)

log = logging.getLogger(__name__)

ACCOUNT_PLACEHOLDER = "{account}"
AWS_AUTH_PATH = "/api/v1/namespaces/kube-system/configmaps/aws-auth"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")
AWS_ERRORS = (ClientError, BotoCoreError)
# What botocore raises parsing a body of a shape its EKS model does not define (a string where
# a structure is due, a list where a map is, a timestamp that is none).
MALFORMED_ANSWER = (AttributeError, TypeError, ValueError)
# Access entries for nodes, which can have no access policy: EKS associates policies with
# STANDARD entries only and grants these what nodes need itself (EKS User Guide, "Associate access
# policies with access entries"; CreateAccessEntry's `type`). An entry of another or no type
# still has its policies listed.
NODE_ENTRY_TYPES = frozenset({"EC2", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX"})


@dataclass(frozen=True)
class AwsOptions:
    regions: tuple[str, ...] = ()
    role_arns: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    external_id: str | None = None
    profile: str | None = None
    clusters: tuple[str, ...] = ()  # only these cluster names (default: every one listed)
    concurrency: int = 16  # EKS calls at a time per account and region (lowered while throttled)
    max_attempts: int = 8
    in_cluster: bool = True  # read RBAC and workloads through the API server too
    region_timeout: float = 60.0  # seconds each of a region's EKS reads may take (tasks.Deadline)


def aws_error(exc: Exception, action: str) -> str:
    """A one-line reason naming the API action; AWS error messages carry no secrets."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{action}: {error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    if isinstance(exc, NoCredentialsError):
        return (
            f"{action}: AWS credentials not found ({exc}): set them as for the AWS CLI "
            "(environment, --profile, SSO or an instance role)"
        )
    return f"{action}: {exc}"


def malformed_error(exc: Exception, action: str) -> str:
    """A one-line reason for an answer of the wrong shape (the body is not quoted)."""
    return f"{action}: the answer is not what the EKS API defines ({type(exc).__name__}: {exc})"


def jsonable(value: Any) -> Any:
    """A boto3 response as the AWS CLI prints it: timestamps as ISO 8601, no ResponseMetadata."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def role_arns(options: AwsOptions) -> list[str]:
    """The roles to assume: templates expanded over --accounts, literal ARNs as given."""
    arns = []
    for arn in options.role_arns:
        if ACCOUNT_PLACEHOLDER in arn:
            if not options.accounts:
                raise InputError(f"--role-arn {arn} has {ACCOUNT_PLACEHOLDER} but no --accounts")
            arns.extend(arn.replace(ACCOUNT_PLACEHOLDER, account) for account in options.accounts)
        else:
            arns.append(arn)
    if options.accounts and not options.role_arns:
        raise InputError("--accounts needs --role-arn with {account} in it")
    for arn in arns:
        if not ROLE_ARN.match(arn):
            raise InputError(
                f"--role-arn {arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
            )
    return arns


class _Account:
    """One account's session, its clients and its regions' lanes, shared by the pool's threads."""

    def __init__(
        self, session: boto3.Session, account: str, config: Config, concurrency: int
    ) -> None:
        self.session = session
        self.account = account
        self._config = config
        self._concurrency = concurrency
        self._clients: dict[tuple[str, str], Any] = {}
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._lock = threading.Lock()

    def lane(self, region: str, endpoint: str = "eks") -> Lane:
        """The lane of the region's EKS API ("eks") or of its clusters' API servers ("kube")."""
        with self._lock:
            return self._lane(region, endpoint)

    def _lane(self, region: str, endpoint: str) -> Lane:
        key = (region, endpoint)
        if key not in self._lanes:
            name = f"{endpoint} in account {self.account}, region {region}"
            self._lanes[key] = Lane(self._concurrency, name)
        return self._lanes[key]

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                client = self.session.client(service, region_name=region, config=self._config)
                client.meta.events.register(f"before-parse.{service}", refuse_wrong_json_types)
                client.meta.events.register("before-send", _refuse_once_stopped)
                if service == "eks":
                    listener = _answers_to(self._lane(region, service))
                    client.meta.events.register(f"response-received.{service}", listener)
                self._clients[key] = client
            return self._clients[key]


# The error codes AWS throttles with (botocore's standard retry mode retries these too).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)


def _answers_to(lane: Lane) -> Callable[..., None]:
    """A response-received listener telling `lane` of each answer, throttled or not (every
    attempt, retries included; a call that got no answer tells nothing)."""

    def on_answer(response_dict: dict | None = None, parsed_response: Any = None, **_: Any) -> None:
        if response_dict is None:
            return
        error = parsed_response.get("Error") if isinstance(parsed_response, dict) else None
        code = error.get("Code") if isinstance(error, dict) else None
        lane.answered(response_dict.get("status_code") == 429 or code in THROTTLING_CODES)

    return on_answer


def _refuse_once_stopped(**_: Any) -> None:
    if stopped():
        raise Abandoned("the scan was interrupted: no request is sent any more")


# The exact types json.loads gives for each shape type of the API model (bool is not an int
# here: `type(True) is bool`).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
    "string": (str,),
    "blob": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (str, int, float),
}
_TYPE_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}

# Where a value first differs from its shape: the path to it (field names, list indexes), the
# types the shape allows there, and the value found.
_Wrong = tuple[tuple[str | int, ...], tuple[type, ...], Any]
# Checks the contents of a value already known to be of its shape's own JSON type.
_ContentsCheck = Callable[[Any], "_Wrong | None"]
# Per (service, API version, operation): the check of its output, compiled once, as every
# answer of a scan is checked and walking botocore's shape objects each time costs more than
# the answer's own parsing.
_OUTPUT_CHECKS: dict[tuple[str, str, str], _ContentsCheck | None] = {}


def refuse_wrong_json_types(operation_model: Any, response_dict: dict, **_: Any) -> None:
    """Refuse a JSON answer whose fields are not of the types the API model gives, before
    botocore parses it: botocore reads a string where a list belongs one character at a time,
    so `"clusters": "prod"` from ListClusters would become clusters p, r, o and d."""
    body = response_dict.get("body")
    if response_dict.get("status_code", 500) >= 300 or not body:
        return
    protocol = operation_model.metadata.get("protocol")
    shape = operation_model.output_shape
    if protocol not in ("json", "rest-json") or shape is None:
        return
    try:
        document = json.loads(body)
    except ValueError:
        return  # botocore reports a body that is no JSON at all
    service = operation_model.service_model
    key = (service.service_name, service.api_version, operation_model.name)
    if key not in _OUTPUT_CHECKS:
        _OUTPUT_CHECKS[key] = _contents_check(shape, {})
    check = _OUTPUT_CHECKS[key]
    if type(document) is not dict:
        wrong: _Wrong | None = ((), (dict,), document)
    else:
        wrong = check(document) if check else None
    if wrong:
        path, allowed, found = wrong
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        found_name = "null" if found is None else _TYPE_NAMES.get(type(found), type(found).__name__)
        raise ValueError(
            f"{where or 'the answer'} must be {_TYPE_NAMES[allowed[0]]}, not {found_name}"
        )


def _contents_check(
    shape: Any, compiled: dict[str, _ContentsCheck | None]
) -> _ContentsCheck | None:
    """The check of what a value of `shape` holds (None when there is nothing inside to check);
    `compiled` holds the shapes' checks made so far, by name, so a recursive shape ends."""
    if shape.name in compiled:
        return compiled[shape.name]
    compiled[shape.name] = lambda value: check(value)  # a recursive shape refers back here
    check: _ContentsCheck | None = None
    if shape.type_name == "structure":
        members = [
            (member.serialization.get("name", name), *_typed(member, compiled))
            for name, member in shape.members.items()
            if not member.serialization.get("location")  # headers and status, not the body
        ]
        typed = [(field, allowed, inner) for field, allowed, inner in members if allowed]

        def check(value: dict) -> _Wrong | None:
            return _first_wrong((f, value.get(f), allowed, inner) for f, allowed, inner in typed)

    elif shape.type_name in ("list", "map"):
        is_list = shape.type_name == "list"
        allowed, inner = _typed(shape.member if is_list else shape.value, compiled)
        if allowed is not None:

            def check(value: list | dict) -> _Wrong | None:
                items = enumerate(value) if is_list else value.items()
                return _first_wrong((at, item, allowed, inner) for at, item in items)

    compiled[shape.name] = check
    return check


def _first_wrong(
    items: Iterable[tuple[str | int, Any, tuple[type, ...], _ContentsCheck | None]],
) -> _Wrong | None:
    """The first of (where, value, the types allowed, the check of its contents) that is wrong;
    a null is never wrong (botocore leaves the field out)."""
    for at, item, allowed, inner in items:
        if item is None:
            continue
        if type(item) not in allowed:
            return (at,), allowed, item
        if inner is not None and (wrong := inner(item)):
            return (at, *wrong[0]), wrong[1], wrong[2]
    return None


def _typed(shape: Any, compiled: dict) -> tuple[tuple[type, ...] | None, _ContentsCheck | None]:
    """The JSON types a value of `shape` may have (None: any), and the check of its contents."""
    allowed = _JSON_TYPES.get(shape.type_name)
    return allowed, _contents_check(shape, compiled) if allowed else None


class EksCollector:
    def __init__(self, options: AwsOptions, session: boto3.Session | None = None) -> None:
        self.options = options
        self.base = session or boto3.Session(profile_name=options.profile)
        self.home_region = self.base.region_name or "us-east-1"
        # Standard retries (exponential backoff with jitter, a retry quota per client, so per
        # region): the lanes already adapt each region's concurrency to its throttling, which
        # botocore's adaptive mode would do again with a rate limit of its own.
        self.config = Config(
            retries={"mode": "standard", "total_max_attempts": options.max_attempts},
            max_pool_connections=options.concurrency,
            connect_timeout=10,
            read_timeout=30,
            user_agent_extra=f"mutguard/{__version__}",
        )
        self._base_lock = threading.Lock()

    def collect(self, on_progress: Callable[[int, int], None] | None = None) -> Iterator[Item]:
        """Yield each cluster (or error) as soon as it is read; on_progress(done, known)."""
        arns = role_arns(self.options)
        initial: list[Task] = [self._account_task(arn) for arn in arns] or [
            self._account_task(None)
        ]
        return run_tasks(initial, self.options.concurrency, on_progress)

    def _base_client(self, service: str) -> Any:
        with self._base_lock:
            return self.base.client(service, region_name=self.home_region, config=self.config)

    def _account_task(self, role_arn: str | None) -> Task:
        def run() -> tuple[list[Task], list[Item]]:
            scope = f"eks:{role_arn.split(':')[4]}" if role_arn else "eks:current-account"
            action = f"sts:AssumeRole {role_arn}" if role_arn else "sts:GetCallerIdentity"
            try:
                account = self._open_account(role_arn)
                scope, action = f"eks:{account.account}", "ec2:DescribeRegions"
                regions = list(self.options.regions) or self._enabled_regions(account)
            except AWS_ERRORS as exc:
                return [], [ScanError(scope=scope, message=aws_error(exc, action))]
            log.info("account %s: %d region(s) to list", account.account, len(regions))
            return [self._region_task(account, region) for region in regions], []

        return run

    def _open_account(self, role_arn: str | None) -> _Account:
        if role_arn is None:
            identity = self._base_client("sts").get_caller_identity()
            return _Account(self.base, identity["Account"], self.config, self.options.concurrency)
        params = {"RoleArn": role_arn, "RoleSessionName": "mutguard"}
        if self.options.external_id:
            params["ExternalId"] = self.options.external_id
        credentials = self._base_client("sts").assume_role(**params)["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.home_region,
        )
        return _Account(session, role_arn.split(":")[4], self.config, self.options.concurrency)

    def _enabled_regions(self, account: _Account) -> list[str]:
        regions = account.client("ec2", self.home_region).describe_regions()["Regions"]
        return sorted(region["RegionName"] for region in regions)

    def _region_task(self, account: _Account, region: str) -> Task:
        """ListClusters, then one task per cluster, all in the region's lane and bound to its
        deadline: an endpoint that never answers costs the scan that deadline, not botocore's
        timeouts times its retries times the calls."""
        scope = f"eks:{account.account}:{region}"
        listed: list[str] = []
        read: list[str] = []

        def late() -> list[Item]:
            seconds = f"{self.options.region_timeout:g}"
            message = f"region {region} did not answer within {seconds} s"
            if listed:
                message += f" ({len(read)} of {len(listed)} cluster(s) read)"
            return [ScanError(scope=scope, message=message)]

        deadline = Deadline(self.options.region_timeout, late)
        lane = account.lane(region)

        def run() -> tuple[list[Task], list[Item]]:
            try:
                paginator = account.client("eks", region).get_paginator("list_clusters")
                names = _cluster_names(paginator.paginate())
            except AWS_ERRORS as exc:
                return [], [ScanError(scope=scope, message=aws_error(exc, "eks:ListClusters"))]
            except MALFORMED_ANSWER as exc:
                message = malformed_error(exc, "eks:ListClusters")
                return [], [ScanError(scope=scope, message=message)]
            if self.options.clusters:
                names = [name for name in names if name in self.options.clusters]
            log.info("account %s, region %s: %d cluster(s)", account.account, region, len(names))
            listed.extend(names)
            tasks = [self._cluster_task(account, region, name, read) for name in names]
            return [lane.bind(deadline.bind(task)) for task in tasks], []

        return lane.bind(deadline.bind(run))

    def _cluster_task(self, account: _Account, region: str, name: str, read: list[str]) -> Task:
        def run() -> tuple[list[Task], list[Item]]:
            source = read_cluster(account.client("eks", region), account.account, region, name)
            read.append(name)
            if self.options.in_cluster and CLUSTER_DOC in source.documents:
                # A task of its own, outside the region's deadline and EKS lane: the API server
                # is the cluster's, and a slow one costs only that cluster (kube's own timeouts).
                task = _in_cluster_task(source, account.session)
                return [account.lane(region, "kube").bind(task)], []
            return [], [source]

        return run


def _in_cluster_task(source: ClusterSource, session: boto3.Session) -> Task:
    def run() -> tuple[list[Task], list[Item]]:
        read_in_cluster(source, session)
        return [], [source]

    return run


def read_cluster(eks: Any, account: str, region: str, name: str) -> ClusterSource:
    """Every document mutguard reads for one cluster; each failure is recorded, not raised."""
    source = ClusterSource(
        Provider.EKS, name, region, account, origin=f"aws:{account}:{region}:{name}"
    )
    action = f"eks:DescribeCluster {name}"
    try:
        described = jsonable(eks.describe_cluster(name=name))
    except AWS_ERRORS as exc:
        source.errors[CLUSTER_DOC] = aws_error(exc, action)
        return source
    except MALFORMED_ANSWER as exc:
        source.errors[CLUSTER_DOC] = malformed_error(exc, action)
        return source
    if not isinstance(described.get("cluster"), dict):
        source.errors[CLUSTER_DOC] = f"{action}: the answer holds no cluster"
        return source
    source.documents[CLUSTER_DOC] = described
    mode = (described.get("cluster", {}).get("accessConfig") or {}).get("authenticationMode")
    if mode != "CONFIG_MAP":  # access entries do not exist in CONFIG_MAP mode
        try:
            source.documents[ACCESS_ENTRIES_DOC] = _access_entries(eks, name)
        except AWS_ERRORS as exc:
            source.errors[ACCESS_ENTRIES_DOC] = aws_error(exc, "eks:ListAccessEntries")
        except MALFORMED_ANSWER as exc:
            source.errors[ACCESS_ENTRIES_DOC] = malformed_error(exc, "eks:ListAccessEntries")
    action = "eks:ListIdentityProviderConfigs"
    try:
        source.documents[IDENTITY_PROVIDERS_DOC] = _identity_providers(eks, name)
    except AWS_ERRORS as exc:
        source.errors[IDENTITY_PROVIDERS_DOC] = aws_error(exc, action)
    except MALFORMED_ANSWER as exc:
        source.errors[IDENTITY_PROVIDERS_DOC] = malformed_error(exc, action)
    return source


def read_in_cluster(source: ClusterSource, session: boto3.Session) -> None:
    """Add the in-cluster documents, read with a token minted for this cluster from `session`."""
    # Imported here: a scan reads in-cluster only once its first clusters are described, and its
    # first AWS call (a cold start's) comes sooner without them.
    from mutguard.providers import in_cluster
    from mutguard.providers.eks_token import EksTokenSource

    cluster = source.documents[CLUSTER_DOC]["cluster"]
    endpoint = cluster.get("endpoint")
    ca_data = (cluster.get("certificateAuthority") or {}).get("data")
    if not endpoint or not ca_data:
        reason = "the cluster reports no API endpoint or CA yet"
        source.errors.update(dict.fromkeys(in_cluster.IN_CLUSTER_DOCS, reason))
        return
    try:
        ca_pem: bytes | None = base64.b64decode(ca_data)
    except (TypeError, ValueError):
        ca_pem = None
    if not isinstance(endpoint, str) or ca_pem is None:
        reason = f"eks:DescribeCluster {source.name}: the endpoint or CA is malformed; not dialled"
        source.errors.update(dict.fromkeys(in_cluster.IN_CLUSTER_DOCS, reason))
        return
    tokens = EksTokenSource(session, source.name, source.location)
    documents, errors = in_cluster.read(
        in_cluster.KubeEndpoint(endpoint, ca_pem, tokens),
        objects={AWS_AUTH_DOC: AWS_AUTH_PATH},
    )
    source.documents.update(documents)
    source.errors.update(errors)


def _cluster_names(pages: Iterable[dict]) -> list[str]:
    names = []
    for page in pages:
        clusters = page.get("clusters", [])
        if not all(isinstance(name, str) and name for name in clusters):
            raise TypeError("clusters is not a list of cluster names")
        names.extend(clusters)
    return names


def _access_entries(eks: Any, name: str) -> list[dict]:
    entries = []
    pages = eks.get_paginator("list_access_entries").paginate(clusterName=name)
    for principal in (arn for page in pages for arn in page["accessEntries"]):
        entry = jsonable(eks.describe_access_entry(clusterName=name, principalArn=principal))
        entry["associatedAccessPolicies"] = (
            []
            if (entry.get("accessEntry") or {}).get("type") in NODE_ENTRY_TYPES
            else _associated_policies(eks, name, principal)
        )
        entries.append(entry)
    return entries


def _associated_policies(eks: Any, name: str, principal: str) -> list[dict]:
    pages = eks.get_paginator("list_associated_access_policies").paginate(
        clusterName=name, principalArn=principal
    )
    return [jsonable(policy) for page in pages for policy in page["associatedAccessPolicies"]]


def _identity_providers(eks: Any, name: str) -> list[dict]:
    configs = []
    pages = eks.get_paginator("list_identity_provider_configs").paginate(clusterName=name)
    for config in (c for page in pages for c in page["identityProviderConfigs"]):
        configs.append(
            jsonable(
                eks.describe_identity_provider_config(
                    clusterName=name, identityProviderConfig=config
                )
            )
        )
    return configs


def collect(
    options: AwsOptions, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[Item]:
    return EksCollector(options).collect(on_progress)
