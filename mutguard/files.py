"""Files mutguard writes are whole or absent, never partial."""

from __future__ import annotations

import os
from pathlib import Path


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
