"""One bounded pool of worker threads per live collection, fed with tasks that can add further
tasks.

A task returns (follow-up tasks, items): listing a project or subscription yields one task per
cluster to read inside it, so in-cluster reads of one large project or subscription still run
in parallel instead of one after another.

The workers are daemon threads, not a ThreadPoolExecutor's: an executor's threads are joined at
interpreter exit (concurrent.futures registers that join with threading._register_atexit), so
after Ctrl-C the process would wait for every call in flight, up to its timeouts and retries.
When the caller stops reading (Ctrl-C raises KeyboardInterrupt in the main thread while it waits
here), no queued task starts any more and the calls in flight are abandoned, not awaited.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from mutguard.sources import ClusterSource, ScanError

log = logging.getLogger(__name__)

Item = ClusterSource | ScanError
Task = Callable[[], tuple[list["Task"], list[Item]]]
# What a worker hands back for one task: its duration and its result, or what it raised.
Outcome = tuple[float, tuple[list[Task], list[Item]] | BaseException]


def run_tasks(
    initial: Iterable[Task],
    concurrency: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Item]:
    """Yield each task's items as soon as it finishes; on_progress(done, known) counts tasks."""
    todo: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
    finished: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    abandoned = threading.Event()
    workers = [
        threading.Thread(
            target=_work,
            args=(todo, finished, abandoned),
            name=f"mutguard_{number}",
            daemon=True,
        )
        for number in range(max(1, concurrency))
    ]
    for worker in workers:
        worker.start()
    try:
        known = done = 0
        for task in initial:
            todo.put(task)
            known += 1
        while done < known:
            seconds, result = finished.get()
            if isinstance(result, Exception):  # a bug in one task must not end the others' scan
                log.error("a collection task failed", exc_info=result)
                error = ScanError("internal", f"{type(result).__name__}: {result}")
                follow_ups, items = [], [error]
            elif isinstance(result, BaseException):
                raise result
            else:
                follow_ups, items = result
            _log_progress(items, seconds)
            for task in follow_ups:
                todo.put(task)
            known += len(follow_ups)
            done += 1
            if on_progress:
                on_progress(done, known)
            yield from items
    finally:
        # Reached early only when the caller gave up (Ctrl-C, or it stopped reading): the tasks
        # still queued are skipped. Either way each worker then meets a stop sign and ends.
        abandoned.set()
        for _ in workers:
            todo.put(None)


def _work(
    todo: queue.SimpleQueue[Task | None],
    finished: queue.SimpleQueue[Outcome],
    abandoned: threading.Event,
) -> None:
    while (task := todo.get()) is not None:
        if abandoned.is_set():
            continue
        started = time.monotonic()
        try:
            result: tuple[list[Task], list[Item]] | BaseException = task()
        except BaseException as exc:  # handed to the main thread, which decides what it means
            result = exc
        finished.put((time.monotonic() - started, result))


def _log_progress(items: list[Item], seconds: float) -> None:
    """With -v: what each task read (cluster names, locations; never a credential)."""
    for item in items:
        if isinstance(item, ScanError):
            log.info("could not read %s (%.1f s): %s", item.scope, seconds, item.message)
        else:
            where = "/".join(filter(None, (item.provider.value, item.account, item.location)))
            unread = f", {len(item.errors)} document(s) unread" if item.errors else ""
            log.info("read cluster %s in %s (%.1f s%s)", item.name, where, seconds, unread)
