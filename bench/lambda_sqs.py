"""Lambda's SQS event source mapping, played by local worker processes.

Each worker process is one Lambda execution environment of the worker function, kept warm
between invocations: it long-polls the queue (ReceiveMessage, at most `batch_size` messages,
the queue's own visibility timeout), builds the event the mapping hands the function
(tests/servers/aws_deployment.py's lambda_record: messageId, receiptHandle, body, attributes,
messageAttributes, md5OfBody, eventSource aws:sqs, eventSourceARN, awsRegion), calls
`handler(event, context)` in-process with a LambdaContext, and then, as with
ReportBatchItemFailures, deletes every message the answer does not list in batchItemFailures.
A failure it lists, an answer naming a message that is not in the batch, a handler that raises,
and a process that dies mid-batch all leave messages in flight: SQS makes them visible again
after the visibility timeout, and the queue's redrive policy moves a message to its dead-letter
queue once it has been received maxReceiveCount times.

Each worker appends JSON lines to its own report file: the batch it received, then how the
invocation went (the messages, which failed, their receive counts, wall and CPU seconds). A
process killed mid-write leaves at most an unfinished last line, which is skipped.
`Workers.drain` waits until the queue is empty and nothing is in flight, and can SIGKILL a
worker in the middle of a batch: a set time into it, or the moment an event is set (say, by a
server the worker is calling). `invoke` runs a function once in a process of its own (the
dispatcher, as the scheduler invokes it).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers.aws_deployment import lambda_record

FUNCTION_NAME = "mutguard-worker"
MEMORY_MB = 1024
LAMBDA_TIMEOUT_SECONDS = 900  # the most a Lambda invocation may run
POLL_SECONDS = 1  # long polling; Lambda's own pollers use 20 s, too slow to stop a run
READY_TIMEOUT_SECONDS = 120.0
DRAIN_POLL_SECONDS = 0.25


class HarnessError(Exception):
    """A worker process could not start, or the queue did not drain."""


@dataclass(frozen=True)
class LambdaContext:
    """What the Lambda runtime passes as `context` (the attributes its Python runtime has)."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline: float  # time.monotonic() when the invocation would time out
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = MEMORY_MB
    log_stream_name: str = "local"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs: where to poll, the function's environment, where to log."""

    queue_url: str
    queue_arn: str
    handler: str  # module:function
    batch_size: int
    environment: dict[str, str]
    report: Path
    log: Path


@dataclass
class Invocation:
    worker: int
    messages: list[str]
    failed: list[str]
    receive_counts: list[int]
    seconds: float
    cpu_seconds: float
    error: str | None


@dataclass
class Consumption:
    """What one drain of the queue did."""

    seconds: float  # from `started` until the queue held nothing
    invocations: list[Invocation] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)  # the killed worker's in-flight messages

    @property
    def redelivered(self) -> int:
        return sum(1 for i in self.invocations for count in i.receive_counts if count > 1)


def load_function(handler: str, environment: dict[str, str], log: Path) -> Any:
    """In a fresh process: the function's environment, its output to `log` (Powertools' JSON
    lines and anything else), and its handler (`module:function`) imported."""
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.environ.update(environment)
    module, name = handler.split(":")
    return getattr(importlib.import_module(module), name)


def new_context(function_arn: str) -> LambdaContext:
    return LambdaContext(
        function_name=function_arn.rsplit(":", 1)[1],
        invoked_function_arn=function_arn,
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + LAMBDA_TIMEOUT_SECONDS,
    )


def serve(spec: WorkerSpec, stop: Any, ready: Any) -> None:
    """A worker process's life: poll, invoke, delete, report; until `stop` is set."""
    handler = load_function(spec.handler, spec.environment, spec.log)
    region, account = spec.queue_arn.split(":")[3:5]
    sqs = boto3.client("sqs", region_name=region)
    ready.release()
    with open(spec.report, "a", encoding="utf-8") as report:
        while not stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=spec.queue_url,
                MaxNumberOfMessages=spec.batch_size,
                WaitTimeSeconds=POLL_SECONDS,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            ids = [m["MessageId"] for m in messages]
            report.write(json.dumps({"received": ids}) + "\n")
            report.flush()
            event = {"Records": [lambda_record(m, spec.queue_arn) for m in messages]}
            context = new_context(f"arn:aws:lambda:{region}:{account}:function:{FUNCTION_NAME}")
            started, cpu = time.monotonic(), time.process_time()
            failed, error = ids, None
            try:
                answer = handler(event, context)
                failed = [f["itemIdentifier"] for f in answer.get("batchItemFailures", [])]
                if not set(failed) <= set(ids):  # Lambda then retries the whole batch
                    failed, error = ids, "batchItemFailures names a message not in the batch"
            except Exception as exc:  # a function error: the whole batch comes back
                error = f"{type(exc).__name__}: {exc}"
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                sqs.delete_message_batch(
                    QueueUrl=spec.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )
            line = {
                "messages": ids,
                "failed": failed,
                "receive_counts": [
                    int(m["Attributes"]["ApproximateReceiveCount"]) for m in messages
                ],
                "seconds": seconds,
                "cpu_seconds": cpu,
                "error": error,
            }
            report.write(json.dumps(line) + "\n")
            report.flush()


def _invoke(
    handler: str, event: Any, environment: dict[str, str], log: Path, arn: str, answer: Any
) -> None:
    function = load_function(handler, environment, log)
    context = new_context(arn)
    started = time.monotonic()
    result = function(event, context)
    answer.send({"answer": result, "started": started, "seconds": time.monotonic() - started})


def invoke(
    handler: str, event: Any, environment: dict[str, str], log: Path, arn: str
) -> dict[str, Any]:
    """Invoke a function once in a fresh process (a cold start, as the scheduler's invoke of
    the dispatcher is): {"answer": ..., "started": time.monotonic() when the handler was
    called, "seconds": how long it ran}."""
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_invoke, args=(handler, event, environment, log, arn, sending))
    process.start()
    sending.close()
    try:
        result: dict[str, Any] = receiving.recv()
    except EOFError:
        raise HarnessError(f"{handler} failed (exit {process.exitcode}); see {log}") from None
    finally:
        process.join()
    return result


def report_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a worker's report (a killed worker's last one may be cut)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def in_flight(sqs: Any, queue_url: str) -> int:
    """Messages visible, delayed or in flight (moto's counts are exact)."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


@dataclass(frozen=True)
class Kill:
    """SIGKILL worker `worker` in the middle of a batch (not at all if the queue drains first):
    once it has held one for `after` seconds or, with `when` given, as soon as `when` is set
    while it holds one."""

    worker: int = 0
    after: float = 0.5
    when: threading.Event | None = None

    def due(self, held_for: float) -> bool:
        """Whether to kill the worker now, `held_for` seconds after it was seen holding a batch."""
        return self.when.is_set() if self.when is not None else held_for >= self.after


class Workers:
    """W worker processes (spawned: each a fresh interpreter, as a Lambda environment is)."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        self.specs = specs
        self._stop = context.Event()
        self._ready = context.Semaphore(0)
        self.processes = [
            context.Process(target=serve, args=(spec, self._stop, self._ready), daemon=True)
            for spec in specs
        ]

    def __enter__(self) -> Workers:
        for process in self.processes:
            process.start()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        ready = 0
        while ready < len(self.processes):
            if self._ready.acquire(timeout=DRAIN_POLL_SECONDS):
                ready += 1
            elif time.monotonic() > deadline or any(p.exitcode is not None for p in self.processes):
                self.__exit__()
                logs = "; ".join(str(spec.log) for spec in self.specs)
                raise HarnessError(f"a worker process did not start (see {logs})")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for process in self.processes:
            process.join(timeout=POLL_SECONDS + 60)
            if process.is_alive():
                process.kill()
                process.join()

    def kill(self, index: int) -> None:
        pid = self.processes[index].pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.processes[index].join()

    def drain(
        self, sqs: Any, queue_url: str, started: float, timeout: float, kill: Kill | None = None
    ) -> Consumption:
        """Wait until the queue holds nothing, killing a worker mid-batch on the way."""
        killed: list[str] = []
        batch_seen: float | None = None  # when the worker to kill was first seen holding a batch
        while in_flight(sqs, queue_url):
            if time.monotonic() - started > timeout:
                raise HarnessError(f"the queue was not drained within {timeout:.0f} s")
            if kill is not None and self._holds_batch(kill.worker):
                batch_seen = batch_seen or time.monotonic()
                if kill.due(time.monotonic() - batch_seen):
                    self.kill(kill.worker)
                    # Still holding it once dead: those messages were in flight when it died.
                    if self._holds_batch(kill.worker):
                        killed = report_lines(self.specs[kill.worker].report)[-1]["received"]
                    kill = None
            time.sleep(DRAIN_POLL_SECONDS)
        seconds = time.monotonic() - started
        invocations = [
            Invocation(
                worker=i,
                messages=line["messages"],
                failed=line["failed"],
                receive_counts=line["receive_counts"],
                seconds=line["seconds"],
                cpu_seconds=line["cpu_seconds"],
                error=line["error"],
            )
            for i, spec in enumerate(self.specs)
            for line in report_lines(spec.report)
            if "messages" in line
        ]
        return Consumption(seconds, invocations, killed)

    def _holds_batch(self, worker: int) -> bool:
        """Whether the worker's last report line is a batch received and not yet answered."""
        lines = report_lines(self.specs[worker].report)
        return bool(lines) and "received" in lines[-1]
