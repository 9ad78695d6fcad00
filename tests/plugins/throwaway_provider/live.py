"""The lab's live collector: its one cluster is lab/cluster.json, renamed as asked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider

LAB = Path(__file__).with_name("lab")


def collect(
    options: Any, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[ClusterSource]:
    document = json.loads((LAB / CLUSTER_DOC).read_text("utf-8"))
    document["throwaway"]["name"] = options.cluster
    if on_progress:
        on_progress(1, 1)
    yield ClusterSource(
        Provider("throwaway"),
        options.cluster,
        "lab",
        options.account,
        documents={CLUSTER_DOC: document},
        origin=f"lab:{options.account}",
    )
