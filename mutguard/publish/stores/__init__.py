"""Where the memory between runs is kept, chosen by `--state-store KIND[:LOCATION]`.

`STATE_STORES` maps a kind to the module that implements it; each such module has
`open_store(location: str) -> StateStore` (mutguard.store.StateStore), and is imported only when
chosen: `sqlite[:PATH]` (sqlite.py), `dynamodb:TABLE`, `azure-table:TABLE`, `gcs:BUCKET[/PREFIX]`.
SQLite is the default; `--state FILE` (or $MUTGUARD_STATE_FILE) is its LOCATION.
$MUTGUARD_STATE_STORE sets the store where the command line cannot (a scheduled function).
`report_history` reads the MUT history of a report's clusters, for the HTML report's trend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from mutguard.errors import InputError, StoreError
from mutguard.models import Report, cluster_key
from mutguard.plugins import AZURE_TABLES, BOTO3, GOOGLE_CLOUD_STORAGE
from mutguard.registry import Registry
from mutguard.state import MutPoint
from mutguard.store import StateStore, histories

log = logging.getLogger("mutguard.publish")

# Another distribution adds a store kind with an entry point in the `mutguard.state_stores` group.
STATE_STORES: Registry[ModuleType] = Registry("state store", "mutguard.state_stores")
STATE_STORES.add("sqlite", "mutguard.publish.stores.sqlite")
STATE_STORES.add("dynamodb", "mutguard.publish.stores.dynamodb", needs=BOTO3)
STATE_STORES.add("azure-table", "mutguard.publish.stores.azure_table", needs=AZURE_TABLES)
STATE_STORES.add("gcs", "mutguard.publish.stores.gcs", needs=GOOGLE_CLOUD_STORAGE)
DEFAULT_STORE = "sqlite"
STORE_ENV = "MUTGUARD_STATE_STORE"


def store_spec(
    state_store: str | None, state_file: Path | None, environ: Mapping[str, str] = os.environ
) -> str:
    """`KIND[:LOCATION]` from --state-store (else $MUTGUARD_STATE_STORE, else sqlite), with
    --state as the SQLite file."""
    spec = state_store or environ.get(STORE_ENV) or DEFAULT_STORE
    if state_file is None:
        return spec
    kind, _, location = spec.partition(":")
    if kind != "sqlite" or location:
        raise InputError(f"--state names a SQLite file; it cannot be combined with {spec}")
    return f"sqlite:{state_file}"


def store_module(spec: str) -> ModuleType:
    """The module of a store's kind; InputError for an unknown kind, MissingDependency when
    what it needs is not installed."""
    kind = spec.partition(":")[0]
    if kind not in STATE_STORES:
        known = ", ".join(STATE_STORES.names())
        raise InputError(f"state store {spec}: unknown kind {kind!r} (known: {known})")
    return STATE_STORES.get(kind)


def open_store(spec: str) -> StateStore:
    store: StateStore = store_module(spec).open_store(spec.partition(":")[2])
    return store


def report_history(spec: str, report: Report) -> dict[str, tuple[MutPoint, ...]] | None:
    """The MUT history the store `spec` holds for the report's clusters (by cluster key), or
    None when the store cannot be read: the report is still worth having without its trend.
    An unknown kind or a missing dependency is raised, as for publishing."""
    store = open_store(spec)
    try:
        return histories(store, (cluster_key(c) for c in report.clusters))
    except StoreError as err:
        log.warning("the MUT trend is left out: %s", err)
        return None
