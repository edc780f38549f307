"""Run every fuzz target for a bounded time, one after the other (`make fuzz`).

    .venv/bin/python tests/fuzz/run.py [--seconds 60] [--only NAME ...]

Targets: ``dsp_c`` (the libFuzzer harness tests/fuzz/fuzz_dsp_c.c, built with clang and
-fsanitize=fuzzer,address,undefined) and every Python target in tests/fuzz/targets.py
(under atheris). Each starts from its committed seeds (tests/fuzz/corpus/<name>/) and a
working corpus under build/fuzz/work/<name>/ that grows from run to run (never committed);
a crashing input is written to build/fuzz/<name>-crash-*. Prints one line per target
(seconds, executions, result) and appends it to build/fuzz/runs.jsonl. Exits 1 on any
finding, 2 when a prerequisite (clang with libFuzzer, atheris) is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "fuzz"
OUT = ROOT / "build" / "fuzz"
HARNESS = OUT / "fuzz_dsp_c"
CFLAGS = [
    "-fsanitize=fuzzer,address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
    "-O1",
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffp-contract=off",  # the same arithmetic as the library's own build
]

sys.path.insert(0, str(HERE))


def _missing(what: str) -> None:
    print(f"make fuzz: {what}", file=sys.stderr)
    sys.exit(2)


def build_harness() -> Path:
    """Build the C harness when its sources changed; exit 2 without clang or libFuzzer."""
    clang = os.environ.get("FUZZ_CC", "clang")
    if shutil.which(clang) is None:
        _missing(f"{clang} not found: apt-get install clang (it brings libFuzzer and sanitizers)")
    sources = [HERE / "fuzz_dsp_c.c", *sorted((ROOT / "dsp_c" / "src").glob("*.c"))]
    headers = [*(ROOT / "dsp_c" / "include").glob("*.h"), *(ROOT / "dsp_c" / "src").glob("*.h")]
    newest = max(p.stat().st_mtime for p in sources + headers)
    if HARNESS.exists() and HARNESS.stat().st_mtime >= newest:
        return HARNESS
    OUT.mkdir(parents=True, exist_ok=True)
    cmd = [clang, *CFLAGS, "-I", str(ROOT / "dsp_c" / "include"), *map(str, sources), "-lm"]
    done = subprocess.run([*cmd, "-o", str(HARNESS)], capture_output=True, text=True)
    if done.returncode != 0:
        if "fuzzer" in done.stderr and "cannot find" in done.stderr:
            _missing("clang cannot link -fsanitize=fuzzer: install libclang-rt-dev (clang >= 14)")
        sys.stderr.write(done.stderr)
        sys.exit(f"make fuzz: building {HARNESS.name} failed")
    return HARNESS


def command(name: str, seconds: int) -> list[str]:
    """The command line that fuzzes ``name`` for ``seconds``."""
    work = OUT / "work" / name
    work.mkdir(parents=True, exist_ok=True)
    flags = [
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
        "-timeout=30",  # seconds for one input: a hang is a finding
        "-rss_limit_mb=2048",
        f"-artifact_prefix={OUT / name}-",
        str(work),  # new inputs go here, never into the committed seeds
        str(HERE / "corpus" / name),
    ]
    if name == "dsp_c":
        return [str(HARNESS), *flags]
    return [sys.executable, str(HERE / "atheris_main.py"), name, *flags]


def run(name: str, seconds: int) -> dict:
    """Fuzz one target; its record (target, seconds, executions, findings, command)."""
    cmd = command(name, seconds)
    before = set(OUT.glob(f"{name}-*"))
    log = OUT / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # The targets' scratch folders: libFuzzer ends the process without Python's atexit.
    tmp = OUT / "tmp" / name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    start = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        ).returncode
    shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - start
    text = log.read_text(errors="replace")
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text) or re.findall(
        r"Done (\d+) runs in", text
    )
    artifacts = sorted(str(p.relative_to(ROOT)) for p in set(OUT.glob(f"{name}-*")) - before)
    return {
        "target": name,
        "seconds": round(elapsed),
        "executions": int(runs[-1]) if runs else None,
        "findings": len(artifacts) or int(code != 0),
        "artifacts": artifacts,
        "exit": code,
        "log": str(log.relative_to(ROOT)),
        "command": " ".join(cmd).replace(str(ROOT) + "/", ""),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    from targets import TARGETS

    names = ["dsp_c", *TARGETS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="time per target (default 60)")
    parser.add_argument("--only", nargs="+", choices=names, help="these targets only")
    args = parser.parse_args(argv)
    chosen = args.only or names
    if any(n != "dsp_c" for n in chosen):
        try:
            import atheris  # noqa: F401
        except ImportError:
            _missing("atheris not installed: .venv/bin/pip install -e '.[fuzz]'")
    if "dsp_c" in chosen:
        build_harness()
    failed = []
    for name in chosen:
        record = run(name, args.seconds)
        with open(OUT / "runs.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        result = "ok" if not record["findings"] else f"FINDING {' '.join(record['artifacts'])}"
        print(
            f"{name:16} {record['seconds']:5d} s {record['executions'] or 0:>10} runs  {result}"
            f"  (log {record['log']})",
            flush=True,
        )
        if record["findings"]:
            failed.append(name)
    if failed:
        print(f"fuzzing found something in: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
