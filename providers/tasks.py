"""One bounded thread pool per live collection, fed with tasks that can add further tasks.

A task returns (follow-up tasks, items): listing a project or subscription yields one task per
cluster to read inside it, so in-cluster reads of one large project or subscription still run
in parallel instead of one after another.
"""

from __future__ import annotations

import logging
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
        pending: set[Future] = {pool.submit(task) for task in initial}
        known, done = len(pending), 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    follow_ups, items = future.result()
                except Exception as exc:  # a bug in one task must not end the other clusters' scan
                    log.exception("a collection task failed")
                    follow_ups, items = [], [ScanError("internal", f"{type(exc).__name__}: {exc}")]
                pending |= {pool.submit(task) for task in follow_ups}
                known += len(follow_ups)
                done += 1
                if on_progress:
                    on_progress(done, known)
                yield from items
