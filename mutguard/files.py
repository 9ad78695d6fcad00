"""Files mutguard reads (named in errors, YAML read safely) and writes (whole or absent, never
partial)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from mutguard.errors import InputError
from mutguard.plugins import needs


def write_atomically(path: Path, text: str) -> None:
    """Write text to a regular file through a temporary file beside it, renamed into place: an
    interrupt, a full disk or a size limit never leaves a partial report or snapshot document
    under the real name (a reader would take it for a whole one), and what was there before
    stays until then. A symlink's target is written, not the link. Anything else that exists (a
    device such as /dev/null or /dev/stdout, a FIFO) is written to directly: a rename would put
    a regular file in its place."""
    target = path.resolve() if path.is_symlink() else path
    if target.exists() and not target.is_file():
        with target.open("w", encoding="utf-8") as stream:
            stream.write(text)
        return
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def read_text_file(path: Path, error: type[InputError] = InputError) -> str:
    """The UTF-8 text of a file the user named; `error` names the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (invalid byte at offset {err.start})") from None
    except OSError as err:
        raise error(f"{path}: cannot be read: {err.strerror or err}") from None


def read_yaml(text: str, origin: str, error: type[InputError] = InputError) -> Any:
    """One YAML document of a configuration file, parsed safely; `error` names `origin`.

    Aliases (`*name`) are refused: nested aliases make a few lines expand to gigabytes ("billion
    laughs") and configuration files have no need of them. Dates stay text, so that a bad one
    (`2026-13-01`) is reported by the model that knows which entry it belongs to."""
    with needs(f"reading {origin}", "notify", "PyYAML"):
        import yaml  # PyYAML: only when a configuration file is used

    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, _yaml_loader())):
            raise error(f"{origin}: YAML aliases (*name) are not accepted")
        return yaml.load(text, _yaml_loader())  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        reason = " ".join(str(err).split())  # PyYAML's messages span lines; errors are one line
        raise error(f"{origin}: not valid YAML: {reason}") from None
    except RecursionError:
        raise error(f"{origin}: not valid YAML: nested too deeply") from None


@functools.cache
def _yaml_loader() -> Any:
    import yaml

    class TextDatesLoader(yaml.SafeLoader):
        """SafeLoader that keeps timestamps as the strings they were written as."""

    TextDatesLoader.add_constructor(
        "tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str
    )
    return TextDatesLoader
