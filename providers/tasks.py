"""The worker threads of one live collection, fed with tasks that can add further tasks, each
task in a lane: the calls to one endpoint.

A task returns (follow-up tasks, items): listing a region, project or subscription yields one
task per cluster to read inside it, so the clusters of one large region are read in parallel
instead of one after another.

**Lanes.** Every lane runs at most its own number of tasks at once, and lanes do not wait for
each other: ten AWS regions, each its own lane, are read at once, and a slow or throttling
region holds only its own lane's tasks. A task bound to no lane runs in the pool's default lane
(`run_tasks(concurrency=...)`). A lane's limit adapts to what its endpoint says (AIMD): each
throttled answer reported with `Lane.answered(throttled=True)` halves it (once per window of
requests that were in flight when it was cut, since a burst answers throttled many times for
one excess), each other answer adds 1/limit, so it grows by one per limit answers, back up to
the ceiling it was made with. Workers are made as tasks become runnable, one per task running.

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
their lane places are freed, so the rest of the scan keeps its concurrency.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from mutguard.sources import ClusterSource, ScanError

log = logging.getLogger(__name__)

Item = ClusterSource | ScanError
Task = Callable[[], tuple[list["Task"], list[Item]]]


class Deadline:
    """A time limit shared by the tasks bound to it, e.g. one region's API calls.

    Each bound task gets `seconds` from when a worker starts it: time spent queued behind other
    work of its lane does not count, so a large region read at low concurrency is not cut short.
    `report()` makes the items to yield when it expires (the error naming the region).
    """

    def __init__(self, seconds: float, report: Callable[[], list[Item]]) -> None:
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"a deadline must be a number of seconds more than 0, not {seconds}")
        self.seconds = seconds
        self.report = report
        self.expired = False  # set once, by the pool, under its lock

    def bind(self, task: Task) -> Task:
        return _Bound(task, self, getattr(task, "lane", None))


class Lane:
    """The tasks that call one endpoint (an AWS region of one account): at most `limit` of
    them run at once. The limit starts at `ceiling`, is halved when the endpoint throttles and
    grows back by one per `limit` answers that were not throttled."""

    def __init__(self, ceiling: int, name: str = "") -> None:
        if ceiling < 1:
            raise ValueError(f"a lane runs at least 1 task at a time, not {ceiling}")
        self.ceiling = ceiling
        self.name = name
        self._limit = float(ceiling)
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: deque[_Entry] = deque()
        self._answers = 0
        self._calm_after = 0  # answers counted before a throttled one may cut the limit again

    @property
    def limit(self) -> int:
        """How many of the lane's tasks may run at once now."""
        with self._lock:
            return int(self._limit)

    def bind(self, task: Task) -> Task:
        return _Bound(task, getattr(task, "deadline", None), self)

    def answered(self, throttled: bool) -> None:
        """One answer from the lane's endpoint: throttled (429, ThrottlingException, ...) or
        not. Called by the clients' threads."""
        with self._lock:
            self._answers += 1
            if not throttled:
                self._limit = min(float(self.ceiling), self._limit + 1 / self._limit)
            elif self._answers > self._calm_after:
                self._limit = max(1.0, self._limit / 2)
                # The lane's other requests in flight were sent at the old limit: their
                # throttled answers are the same excess, not a reason to cut again.
                self._calm_after = self._answers + max(0, self._running - 1)
                log.info(
                    "%s throttles: %d call(s) at a time from now on",
                    self.name or "an endpoint",
                    int(self._limit),
                )

    def _admit(self, entry: _Entry) -> _Entry | None:
        """Queue `entry`; it, if it may start now."""
        with self._lock:
            if self._running < int(self._limit) and not self._waiting:
                self._running += 1
                return entry
            self._waiting.append(entry)
            return None

    def _release(self) -> list[_Entry]:
        """One task of the lane ended; the queued ones that may start now."""
        with self._lock:
            self._running -= 1
            ready = []
            while self._waiting and self._running < int(self._limit):
                self._running += 1
                ready.append(self._waiting.popleft())
            return ready


class _Bound:
    def __init__(self, task: Task, deadline: Deadline | None, lane: Lane | None) -> None:
        self.task = task
        self.deadline = deadline
        self.lane = lane

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
# A queued task: its token, the task, its deadline and its lane.
_Entry = tuple[int, Task, Deadline | None, Lane]


def run_tasks(
    initial: Iterable[Task],
    concurrency: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Item]:
    """Yield each task's items as soon as it finishes; on_progress(done, known) counts tasks.
    Tasks bound to no lane run at most `concurrency` at a time."""
    pool = _Pool(Lane(max(1, concurrency), "the default lane"))
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
    def __init__(self, default_lane: Lane) -> None:
        self.default_lane = default_lane
        self.ready: queue.SimpleQueue[_Entry | None] = queue.SimpleQueue()
        self.finished: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.abandoned = threading.Event()  # the caller gave up: start nothing more
        self._lock = threading.Lock()
        # Under the lock: the bound tasks a worker is running (token -> deadline, start, lane),
        # the tokens of those no longer awaited, whose workers end once the call returns, and
        # the workers alive and those waiting for a task (or about to be handed one).
        self._running: dict[int, tuple[Deadline, float, Lane]] = {}
        self._dropped: set[int] = set()
        self._workers = 0
        self._idle = 0
        self._named = 0
        # Main thread only: per deadline, its tasks queued or running, not yet counted done.
        self._pending: dict[Deadline, int] = {}
        self._tokens = 0

    def put(self, task: Task) -> bool:
        """Queue `task` in its lane, unless its deadline has already expired; whether it was
        queued."""
        deadline: Deadline | None = getattr(task, "deadline", None)
        if deadline is not None:
            if deadline.expired:
                return False
            self._pending[deadline] = self._pending.get(deadline, 0) + 1
        lane: Lane = getattr(task, "lane", None) or self.default_lane
        self._tokens += 1
        entry = lane._admit((self._tokens, task, deadline, lane))
        if entry is not None:
            self._start(entry)
        return True

    def _start(self, entry: _Entry) -> None:
        """Hand a task its lane admitted to an idle worker, or to a new one."""
        with self._lock:
            if self.abandoned.is_set():
                return
            name = None
            if self._idle:
                self._idle -= 1
            else:
                self._workers += 1
                self._named += 1
                name = f"mutguard_{self._named - 1}"
        if name is not None:
            threading.Thread(target=self._work, name=name, daemon=True).start()
        self.ready.put(entry)

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
            ends = [started + d.seconds for d, started, _ in self._running.values()]
        # A queued bound task may start at any moment: look again when it could be late.
        ends += [now + deadline.seconds for deadline, count in self._pending.items() if count]
        return max(0.0, min(ends) - now) if ends else None

    def expire(self) -> list[tuple[Deadline, int]]:
        """Expire each deadline with a late task: (deadline, its tasks now counted done)."""
        now = time.monotonic()
        ready: list[_Entry] = []
        with self._lock:
            late = {d for d, started, _ in self._running.values() if now - started >= d.seconds}
            for deadline in late:
                deadline.expired = True
                for token in [t for t, (d, _, _) in self._running.items() if d is deadline]:
                    _, _, lane = self._running.pop(token)
                    self._dropped.add(token)
                    self._workers -= 1  # left waiting for the call; it ends when that returns
                    ready += lane._release()
        for entry in ready:
            self._start(entry)
        return [(deadline, self._pending.pop(deadline, 0)) for deadline in late]

    def stop(self) -> None:
        with self._lock:  # no worker is added once this is set
            self.abandoned.set()
            workers = self._workers
        for _ in range(workers):
            self.ready.put(None)

    def _work(self) -> None:
        _current.abandoned = self.abandoned
        while (entry := self.ready.get()) is not None:
            if self.abandoned.is_set():
                continue
            token, task, deadline, lane = entry
            outcome = self._run(token, task, deadline, lane)
            with self._lock:
                if token in self._dropped:  # no longer awaited; its lane place was freed
                    self._dropped.discard(token)
                    return
                self._running.pop(token, None)
                self._idle += 1
                ready = lane._release()
            if outcome is not None:
                self.finished.put(outcome)
            for next_entry in ready:
                self._start(next_entry)

    def _run(self, token: int, task: Task, deadline: Deadline | None, lane: Lane) -> Outcome | None:
        """Run one task; None when its deadline expired before it started (already counted)."""
        started = time.monotonic()
        if deadline is not None:
            with self._lock:
                if deadline.expired:
                    return None
                self._running[token] = (deadline, started, lane)
        try:
            result: tuple[list[Task], list[Item]] | BaseException = task()
        except BaseException as exc:  # handed to the main thread, which decides what it means
            result = exc
        return deadline, time.monotonic() - started, result


def _log_progress(items: list[Item], seconds: float) -> None:
    """With -v: what each task read (cluster names, locations; never a credential)."""
    for item in items:
        if isinstance(item, ScanError):
            log.info("could not read %s (%.1f s): %s", item.scope, seconds, item.message)
        else:
            where = "/".join(filter(None, (item.provider.value, item.account, item.location)))
            unread = f", {len(item.errors)} document(s) unread" if item.errors else ""
            log.info("read cluster %s in %s (%.1f s%s)", item.name, where, seconds, unread)
