"""The benches' instruction counter (tests/bench/callgrind.py) and the live pipeline's worker."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from callgrind import instructions  # noqa: E402

BENCH_PIPELINE = Path(__file__).with_name("bench_pipeline.py")


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind: apt-get install valgrind")
def test_the_count_grows_with_the_work_and_repeats(tmp_path) -> None:
    """A loop of 200 000 steps costs more than one of 100 000 by about as much as the
    second costs over nothing; the same run counts the same."""
    script = tmp_path / "loop.py"
    script.write_text("import sys\nfor _ in range(int(sys.argv[1])):\n    pass\n")
    none, once, twice = (instructions(str(script), [str(n)]) for n in (0, 100_000, 200_000))
    step = once - none
    assert step > 100_000  # several instructions an iteration
    assert abs((twice - once) - step) < 0.05 * step
    assert abs(instructions(str(script), ["100000"]) - once) < 0.01 * step


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind: apt-get install valgrind")
def test_a_failing_script_is_an_error(tmp_path) -> None:
    script = tmp_path / "fail.py"
    script.write_text("raise SystemExit(3)\n")
    with pytest.raises(subprocess.CalledProcessError):
        instructions(str(script), [])


@pytest.mark.parametrize("mode", ["none", "live"])
def test_the_live_worker_runs_in_both_modes(mode) -> None:
    """What the count runs under valgrind: the pipeline (``live``) or only its set-up."""
    done = subprocess.run(
        [sys.executable, str(BENCH_PIPELINE), "--work", mode, "--count-s", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
