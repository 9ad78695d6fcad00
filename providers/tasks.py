"""One bounded thread pool per live collection, fed with tasks that can add further tasks.

A task returns (follow-up tasks, items): listing a project or subscription yields one task per
cluster to read inside it, so in-cluster reads of one large project or subscription still run
in parallel instead of one after another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from mutguard.sources import ClusterSource, ScanError

log = logging.getLogger(__name__)

Item = ClusterSource | ScanError
Task = Callable[[], tuple[list["Task"], list[Item]]]


def run_tasks(
    initial: Iterable[Task],
    concurrency: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Item]:
    """Yield each task's items as soon as it finishes; on_progress(done, known) counts tasks."""
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="mutguard") as pool:
        pending: set[Future] = {pool.submit(_timed, task) for task in initial}
        known, done = len(pending), 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    seconds, (follow_ups, items) = future.result()
                except Exception as exc:  # a bug in one task must not end the other clusters' scan
                    log.exception("a collection task failed")
                    seconds, follow_ups = 0.0, []
                    items = [ScanError("internal", f"{type(exc).__name__}: {exc}")]
                _log_progress(items, seconds)
                pending |= {pool.submit(_timed, task) for task in follow_ups}
                known += len(follow_ups)
                done += 1
                if on_progress:
                    on_progress(done, known)
                yield from items


def _timed(task: Task) -> tuple[float, tuple[list[Task], list[Item]]]:
    started = time.monotonic()
    result = task()
    return time.monotonic() - started, result


def _log_progress(items: list[Item], seconds: float) -> None:
    """With -v: what each task read (cluster names, locations; never a credential)."""
    for item in items:
        if isinstance(item, ScanError):
            log.info("could not read %s (%.1f s): %s", item.scope, seconds, item.message)
        else:
            where = "/".join(filter(None, (item.provider.value, item.account, item.location)))
            unread = f", {len(item.errors)} document(s) unread" if item.errors else ""
            log.info("read cluster %s in %s (%.1f s%s)", item.name, where, seconds, unread)
