"""Run scripts against the firmware under the real MicroPython VM (node + WebAssembly)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "edge" / "firmware"
DRIVER = Path(__file__).with_name("mpy_run.mjs")
MJS = ROOT / "build/node/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs"


@pytest.fixture(scope="session")
def run_mpy():
    """``run_mpy(script) -> stdout`` of ``script`` run by MicroPython with ``sensorfw`` importable.

    Skips only when node itself is absent, and not under CI (CI=1, as .ci/run sets); a
    missing npm package fails, so CI cannot pass without having run the firmware under
    MicroPython.
    """
    node = shutil.which("node")
    if node is None:
        message = "node is not on PATH: the firmware tests run MicroPython under node"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    mjs = Path(os.environ.get("MICROPYTHON_MJS", MJS))
    if not mjs.exists():
        pytest.fail(f"{mjs} is missing: run `make firmware-vm` to install MicroPython for node")

    def run(script: str) -> str:
        proc = subprocess.run(
            [node, str(DRIVER), str(mjs), str(FIRMWARE)],
            input=script,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AssertionError(f"MicroPython failed:\n{proc.stderr}\n{proc.stdout}")
        return proc.stdout

    return run
