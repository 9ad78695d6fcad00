"""One bounded pool of worker threads per live collection, fed with tasks that can add further
tasks.

A task returns (follow-up tasks, items): listing a project or subscription yields one task per
cluster to read inside it, so in-cluster reads of one large project or subscription still run
in parallel instead of one after another.

The workers are daemon threads, not a ThreadPoolExecutor's: an executor's threads are joined at
interpreter exit (concurrent.futures registers that join with threading._register_atexit), so
after Ctrl-C the process would wait for every call in flight, up to its timeouts and retries.
When the caller stops reading (Ctrl-C raises KeyboardInterrupt in the main thread while it waits
here), no queued task starts any more and the calls in flight are abandoned, not awaited; a
client that checks `stopped()` before each request (EKS's do) sends no further call either.

The same idea bounds an endpoint that accepts connections but never answers (or trickles bytes,
which socket read timeouts do not catch): tasks bound to a Deadline (one region's API calls)
must each finish within its seconds of starting. The first that does not expires the Deadline:
its error is reported, its queued tasks are skipped, its running ones are no longer awaited and
their workers are replaced, so the rest of the scan keeps its concurrency.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from mutguard.sources import ClusterSource, ScanError

log = logging.getLogger(__name__)

Item = ClusterSource | ScanError
Task = Callable[[], tuple[list["Task"], list[Item]]]


class Deadline:
    """A time limit shared by the tasks bound to it, e.g. one region's API calls.

    Each bound task gets `seconds` from when a worker starts it: time spent queued behind other
    regions' work does not count, so a large region read at low concurrency is not cut short.
    `report()` makes the items to yield when it expires (the error naming the region).
    """

    def __init__(self, seconds: float, report: Callable[[], list[Item]]) -> None:
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"a deadline must be a number of seconds more than 0, not {seconds}")
        self.seconds = seconds
        self.report = report
        self.expired = False  # set once, by the pool, under its lock

    def bind(self, task: Task) -> Task:
        return _Bound(task, self)


class _Bound:
    def __init__(self, task: Task, deadline: Deadline) -> None:
        self.task = task
        self.deadline = deadline

    def __call__(self) -> tuple[list[Task], list[Item]]:
        return self.task()


# The pool whose task a worker thread is running, so that a task can tell it was given up.
_current = threading.local()


class Abandoned(Exception):
    """Raised by a task's client before a request, once the scan was given up (Ctrl-C)."""


def stopped() -> bool:
    """Whether the pool running this thread's task was given up: clients check it before each
    request, so that none is sent after Ctrl-C, not even the next call of a task under way."""
    abandoned = getattr(_current, "abandoned", None)
    return abandoned is not None and abandoned.is_set()


# What a worker hands back for one task: its deadline, its duration, and its result or what it
# raised.
Outcome = tuple[Deadline | None, float, tuple[list[Task], list[Item]] | BaseException]


def run_tasks(
    initial: Iterable[Task],
    concurrency: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Item]:
    """Yield each task's items as soon as it finishes; on_progress(done, known) counts tasks."""
    pool = _Pool()
    for _ in range(max(1, concurrency)):
        pool.add_worker()
    try:
        known = done = 0
        for task in initial:
            known += pool.put(task)
        while done < known:
            try:
                deadline, seconds, result = pool.finished.get(timeout=pool.until_next_expiry())
            except queue.Empty:
                follow_ups, items, counted = [], [], 0
            else:
                follow_ups, items, counted = pool.settle(deadline, seconds, result)
            known += sum(pool.put(task) for task in follow_ups)
            for expired, tasks in pool.expire():
                counted += tasks
                report = expired.report()
                _log_progress(report, expired.seconds)
                items += report
            done += counted
            if on_progress and counted:
                on_progress(done, known)
            yield from items
    finally:
        # Reached early only when the caller gave up (Ctrl-C, or it stopped reading): the tasks
        # still queued are skipped. Either way each worker then meets a stop sign and ends.
        pool.stop()


class _Pool:
    def __init__(self) -> None:
        self.todo: queue.SimpleQueue[tuple[int, Task] | None] = queue.SimpleQueue()
        self.finished: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.abandoned = threading.Event()  # the caller gave up: start nothing more
        self._lock = threading.Lock()
        # Under the lock: the bound tasks a worker is running (token -> deadline, start) and the
        # tokens of those no longer awaited, whose workers end once the call returns.
        self._running: dict[int, tuple[Deadline, float]] = {}
        self._dropped: set[int] = set()
        # Main thread only: per deadline, its tasks queued or running, not yet counted done.
        self._pending: dict[Deadline, int] = {}
        self._tokens = 0
        self._workers = 0

    def add_worker(self) -> None:
        self._workers += 1
        name = f"mutguard_{self._workers - 1}"
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def put(self, task: Task) -> bool:
        """Queue `task`, unless its deadline has already expired; whether it was queued."""
        deadline = getattr(task, "deadline", None)
        if deadline is not None:
            if deadline.expired:
                return False
            self._pending[deadline] = self._pending.get(deadline, 0) + 1
        self._tokens += 1
        self.todo.put((self._tokens, task))
        return True

    def settle(
        self,
        deadline: Deadline | None,
        seconds: float,
        result: tuple[list[Task], list[Item]] | BaseException,
    ) -> tuple[list[Task], list[Item], int]:
        """(follow-ups, items, tasks counted done) for one outcome."""
        counted = 1
        if deadline is not None and deadline.expired:
            # Finished as its deadline expired: already counted done, but what it read is kept
            # (put() drops its follow-ups bound to that deadline).
            counted = 0
        elif deadline is not None:
            self._pending[deadline] -= 1
        if isinstance(result, Exception):  # a bug in one task must not end the others' scan
            log.error("a collection task failed", exc_info=result)
            follow_ups: list[Task] = []
            items: list[Item] = [ScanError("internal", f"{type(result).__name__}: {result}")]
        elif isinstance(result, BaseException):
            raise result
        else:
            follow_ups, items = result
        _log_progress(items, seconds)
        return list(follow_ups), list(items), counted

    def until_next_expiry(self) -> float | None:
        """Seconds until some running bound task may be late; None while none can be."""
        now = time.monotonic()
        with self._lock:
            ends = [started + deadline.seconds for deadline, started in self._running.values()]
        # A queued bound task may start at any moment: look again when it could be late.
        ends += [now + deadline.seconds for deadline, count in self._pending.items() if count]
        return max(0.0, min(ends) - now) if ends else None

    def expire(self) -> list[tuple[Deadline, int]]:
        """Expire each deadline with a late task: (deadline, its tasks now counted done)."""
        now = time.monotonic()
        with self._lock:
            late = {d for d, started in self._running.values() if now - started >= d.seconds}
            for deadline in late:
                deadline.expired = True
                for token in [t for t, (d, _) in self._running.items() if d is deadline]:
                    del self._running[token]
                    self._dropped.add(token)
                    self.add_worker()  # in place of the one left waiting for the call
        return [(deadline, self._pending.pop(deadline, 0)) for deadline in late]

    def stop(self) -> None:
        self.abandoned.set()
        for _ in range(self._workers):
            self.todo.put(None)

    def _work(self) -> None:
        _current.abandoned = self.abandoned
        while (entry := self.todo.get()) is not None:
            token, task = entry
            if self.abandoned.is_set():
                continue
            deadline: Deadline | None = getattr(task, "deadline", None)
            started = time.monotonic()
            if deadline is not None:
                with self._lock:
                    if deadline.expired:  # skipped: counted done when it expired
                        continue
                    self._running[token] = (deadline, started)
            try:
                result: tuple[list[Task], list[Item]] | BaseException = task()
            except BaseException as exc:  # handed to the main thread, which decides what it means
                result = exc
            with self._lock:
                self._running.pop(token, None)
                if token in self._dropped:  # no longer awaited; a new worker took this place
                    self._dropped.discard(token)
                    return
            self.finished.put((deadline, time.monotonic() - started, result))


def _log_progress(items: list[Item], seconds: float) -> None:
    """With -v: what each task read (cluster names, locations; never a credential)."""
    for item in items:
        if isinstance(item, ScanError):
            log.info("could not read %s (%.1f s): %s", item.scope, seconds, item.message)
        else:
            where = "/".join(filter(None, (item.provider.value, item.account, item.location)))
            unread = f", {len(item.errors)} document(s) unread" if item.errors else ""
            log.info("read cluster %s in %s (%.1f s%s)", item.name, where, seconds, unread)
