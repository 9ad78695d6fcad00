"""Run the test suite again with the clock two years ahead: no test may depend on the day it runs.

libfaketime moves what the tests, and every process they start (moto_server, Azurite, the CLI),
read as the date. `make test` builds it (the Makefile says how, and why not Debian's build) into
.tools/. Only the wall clock moves: with a faked monotonic clock Python's timed waits (Event.wait,
botocore's rate limiter) hang. Tests that reach the package index (`needs_index`) are left out:
its real TLS certificates have expired two years from now.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SHIFT = "+730d"
LIBRARY = Path(__file__).resolve().parent.parent / ".tools" / "libfaketime.so.1"


def main() -> int:
    if not LIBRARY.is_file():
        print(
            f"SKIPPED the run with the clock two years ahead: {LIBRARY} is not there "
            "(`make test` builds it; that needs a C compiler and make)"
        )
        return 0
    env = {
        **os.environ,
        "LD_PRELOAD": ":".join(filter(None, (str(LIBRARY), os.environ.get("LD_PRELOAD")))),
        "FAKETIME": SHIFT,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    print(f"the suite again with the clock {SHIFT} ahead (libfaketime)", flush=True)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not needs_index"]
    return subprocess.run([*command, *sys.argv[1:]], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
