"""Offline snapshots: directories of the raw JSON the real CLIs print (README: Offline snapshots).

`read` turns a cluster directory, or a directory of them, into ClusterSources; `write` stores a
ClusterSource in the same layout, so `mutguard snapshot` output scans exactly like the live cloud.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from mutguard.errors import InputError
from mutguard.providers import detect
from mutguard.sources import CLUSTER_DOC, ERRORS_DOC, ClusterSource, ScanError

_NOT_A_DOCUMENT = {ERRORS_DOC}


def find_cluster_dirs(root: Path) -> list[Path]:
    if not root.exists():
        raise InputError(f"snapshot {root}: no such file or directory")
    if not root.is_dir():
        raise InputError(
            f"snapshot {root}: not a directory; pass the folder that holds {CLUSTER_DOC} "
            "(or a folder of such folders)"
        )
    if (root / CLUSTER_DOC).is_file():
        return [root]
    found = sorted(child for child in root.iterdir() if (child / CLUSTER_DOC).is_file())
    if not found:
        raise InputError(f"snapshot {root}: no {CLUSTER_DOC} in it or in its subdirectories")
    return found


def read(root: Path) -> Iterator[ClusterSource | ScanError]:
    """Every cluster under root; a directory that cannot be understood becomes a ScanError."""
    for directory in find_cluster_dirs(root):
        try:
            yield _read_cluster_dir(directory)
        except InputError as exc:
            yield ScanError(scope=f"snapshot:{directory}", message=str(exc))


def _read_cluster_dir(directory: Path) -> ClusterSource:
    documents: dict[str, object] = {}
    errors: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name in _NOT_A_DOCUMENT:
            continue
        try:
            documents[path.name] = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if path.name == CLUSTER_DOC:
                raise InputError(f"{path}: invalid JSON ({exc})") from exc
            errors[path.name] = f"{path.name} is not valid JSON ({exc})"
    errors_file = directory / ERRORS_DOC
    if errors_file.is_file():
        try:
            recorded = json.loads(errors_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{errors_file}: invalid JSON ({exc})") from exc
        if not isinstance(recorded, dict):
            raise InputError(f"{errors_file}: expected an object of document name to reason")
        errors.update({str(k): str(v) for k, v in recorded.items()})
    return ClusterSource(
        provider=detect(documents[CLUSTER_DOC]),
        name=directory.name,
        documents=documents,
        errors=errors,
        origin=str(directory / CLUSTER_DOC),
    )


def directory_name(source: ClusterSource) -> str:
    raw = "_".join(
        p for p in (source.provider.value, source.account, source.location, source.name) if p
    )
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw)


def write(source: ClusterSource, root: Path) -> Path:
    """Store one cluster's documents (and why any are missing) under root."""
    directory = root / directory_name(source)
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in source.documents.items():
        (directory / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if source.errors:
        (directory / ERRORS_DOC).write_text(
            json.dumps(source.errors, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return directory
