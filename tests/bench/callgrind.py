"""Instruction counts under valgrind's callgrind, for the benches (``make bench``).

A count does not change with the load on the machine, so it is what a busy machine can
measure repeatably, and what an estimate for another CPU starts from.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence


def instructions(script: str, args: Sequence[str]) -> int:
    """Instructions that ``python script args...`` executes, start-up included.

    Runs under ``valgrind --tool=callgrind`` with one BLAS thread (idle ones spin) and a
    fixed hash seed (a repeatable start-up), from the current directory.
    """
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            script,
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind for {args}: {run.stderr}")
    return int(found.group(1))
