"""Offline snapshots: directories of the raw JSON the real CLIs print (README: Offline snapshots).

`read` turns a cluster directory, or a directory of them, into ClusterSources; `write` stores a
ClusterSource in the same layout, so `mutguard snapshot` output scans exactly like the live cloud.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

from mutguard.errors import InputError
from mutguard.files import write_atomically
from mutguard.providers import detect
from mutguard.sources import CLUSTER_DOC, ERRORS_DOC, ClusterSource, ScanError, load_json
from mutguard.workloads import redacted_env_value

# What `write` keeps out of a snapshot, and the note it leaves of it (read by no check).
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REDACTED_MANIFEST = "<redacted by mutguard>"
REDACTIONS_DOC = "redactions.json"
REDACTIONS_ABOUT = (
    "mutguard snapshot replaced these fields, by document: each literal env value by "
    "'<redacted by mutguard: VERDICT>', the secret-env detector's verdict on it, which a scan "
    "of this snapshot reads instead of the value; each last-applied manifest by "
    f"'{REDACTED_MANIFEST}'"
)
_NOT_A_DOCUMENT = {ERRORS_DOC, REDACTIONS_DOC}
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
_MAX_DOCUMENT_SIZE = "256 MiB"
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def find_cluster_dirs(root: Path) -> list[Path]:
    if not root.exists():
        raise InputError(f"snapshot {root}: no such file or directory")
    if not root.is_dir():
        raise InputError(
            f"snapshot {root}: not a directory; pass the folder that holds {CLUSTER_DOC} "
            "(or a folder of such folders)"
        )
    # lexists, not is_file: a cluster.json that is a broken link, a loop or a FIFO still marks
    # a cluster directory, so that cluster is reported with why it could not be read.
    if os.path.lexists(root / CLUSTER_DOC):
        return [root]
    found = sorted(child for child in root.iterdir() if os.path.lexists(child / CLUSTER_DOC))
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
    cluster_file = directory / CLUSTER_DOC
    try:
        documents: dict[str, object] = {CLUSTER_DOC: read_document(cluster_file)}
        names = sorted(path.name for path in directory.iterdir() if path.suffix == ".json")
    except InputError as exc:
        raise InputError(f"{cluster_file} {exc}") from None
    except OSError as exc:
        raise InputError(f"{directory}: cannot be listed: {exc.strerror}") from None
    errors: dict[str, str] = {}
    for name in names:
        if name in _NOT_A_DOCUMENT or name == CLUSTER_DOC:
            continue
        try:
            documents[name] = read_document(directory / name)
        except InputError as exc:
            errors[name] = f"{name} {exc}"
    errors_file = directory / ERRORS_DOC
    if os.path.lexists(errors_file):
        errors.update(_recorded_errors(errors_file))
    return ClusterSource(
        provider=detect(documents[CLUSTER_DOC]),
        name=directory.name,
        documents=documents,
        errors=errors,
        origin=str(cluster_file),
    )


def _recorded_errors(path: Path) -> dict[str, str]:
    """errors.json; when it cannot be read itself, that is the one error recorded."""
    try:
        recorded = read_document(path)
    except InputError as exc:
        return {path.name: f"{path.name} {exc}"}
    if not isinstance(recorded, dict):
        return {path.name: f"{path.name}: expected an object of document name to reason"}
    return {str(k): str(v) for k, v in recorded.items()}


def read_document(path: Path) -> Any:
    """One JSON document; InputError says why it cannot be read, worded to follow its name.

    Only a regular file is opened (a FIFO would block the scan forever, a device could be
    endless), at most MAX_DOCUMENT_BYTES of it, and nesting too deep for the parser is an
    error of this document, not a RecursionError that ends the whole run.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"is not a regular file but {_file_kind(info.st_mode)}")
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise InputError(f"is larger than {_MAX_DOCUMENT_SIZE}, the limit per document")
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since the stat, opening it
        # does not wait for a writer, and the fstat below refuses it.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            opened = os.fstat(file.fileno())
            if not stat.S_ISREG(opened.st_mode):
                raise InputError(f"is not a regular file but {_file_kind(opened.st_mode)}")
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"is larger than {_MAX_DOCUMENT_SIZE}, the limit per document")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not valid JSON (not UTF-8: {exc.reason})") from None
    try:
        return load_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"is not valid JSON ({exc})") from None
    except RecursionError:
        # Measured only now: counting every bracket of every document would double the read.
        depth = _nesting_depth(text)
        raise InputError(
            f"is nested {depth} levels deep, deeper than JSON parsing allows"
        ) from None


def _nesting_depth(text: str) -> int:
    """How deep text's arrays and objects nest; brackets inside strings do not count."""
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text)).encode()
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def directory_name(source: ClusterSource) -> str:
    raw = "_".join(
        p for p in (source.provider.value, source.account, source.location, source.name) if p
    )
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw)


def write(source: ClusterSource, root: Path) -> Path:
    """Store one cluster's documents (and why any are missing) under root, with every literal env
    value and every last-applied manifest replaced by a marker, and a note of what was."""
    directory = root / directory_name(source)
    directory.mkdir(parents=True, exist_ok=True)
    redactions: dict[str, dict[str, int]] = {}
    for name, document in source.documents.items():
        counts: Counter[str] = Counter()
        redacted = _without_secrets(document, counts)
        write_atomically(directory / name, json.dumps(redacted, indent=2) + "\n")
        if counts:
            redactions[name] = dict(sorted(counts.items()))
    if source.errors:
        write_atomically(
            directory / ERRORS_DOC, json.dumps(source.errors, indent=2, sort_keys=True) + "\n"
        )
    if redactions:
        note = {"about": REDACTIONS_ABOUT, "redacted": redactions}
        write_atomically(directory / REDACTIONS_DOC, json.dumps(note, indent=2) + "\n")
    return directory


def _without_secrets(document: Any, counts: Counter[str]) -> Any:
    """A copy of a document without literal env values or last-applied manifests (which hold
    those env values again); `counts` tallies what was replaced, by field. Walked with a stack,
    not recursion: a document is as deeply nested as whoever sent it made it."""
    copy = json.loads(json.dumps(document))
    stack = [copy]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            env = node.get("env")
            if isinstance(env, list):
                node["env"] = [_without_env_value(variable, counts) for variable in env]
            annotations = node.get("annotations")
            if isinstance(annotations, dict) and LAST_APPLIED in annotations:
                annotations[LAST_APPLIED] = REDACTED_MANIFEST
                counts[f"metadata.annotations[{LAST_APPLIED}]"] += 1
            stack.extend(node.values())
    return copy


def _without_env_value(variable: Any, counts: Counter[str]) -> Any:
    if not isinstance(variable, dict) or not isinstance(variable.get("value"), str):
        return variable  # valueFrom references and malformed entries stay as they are
    counts["env[].value"] += 1
    value = redacted_env_value(str(variable.get("name", "")), variable["value"])
    return {**variable, "value": value}
