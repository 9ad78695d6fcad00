"""Run the test suite again with the clock two years ahead: no test may depend on the day it runs.

libfaketime moves what the tests, and every process they start (moto_server, Azurite, the CLI),
read as the date. It is the build from PyPI's `libfaketime` package, made without faking sleeps:
with Debian's build, Python's timed waits (Event.wait, botocore's rate limiter) hang once the
monotonic clock is faked, and sleeps fail once it is not. Tests that reach the package index
(`needs_index`) are left out: its real TLS certificates have expired two years from now.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SHIFT = "+730d"


def _library() -> Path | None:
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or spec.origin is None:
        return None
    library = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    return library if library.is_file() else None


def main() -> int:
    library = _library()
    if library is None:
        print(
            "SKIPPED the run with the clock two years ahead: the libfaketime package is not "
            "installed (`pip install libfaketime` builds it and needs a C compiler and make)"
        )
        return 0
    env = {
        **os.environ,
        "LD_PRELOAD": ":".join(filter(None, (str(library), os.environ.get("LD_PRELOAD")))),
        "FAKETIME": SHIFT,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    print(f"the suite again with the clock {SHIFT} ahead (libfaketime)", flush=True)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not needs_index"]
    return subprocess.run([*command, *sys.argv[1:]], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
