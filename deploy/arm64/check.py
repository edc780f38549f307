"""``make arm64``: the unit on an emulated Raspberry-Pi-class board, checked end to end.

The board is a Debian bookworm arm64 root file system (Raspberry Pi OS Bookworm 64-bit has
the same Python 3.11 and glibc 2.36), made once with debootstrap, run under qemu-user
(binfmt_misc) and cached in ``build/arm64/``. Each run starts from a fresh copy of it (a new
board) and goes through the steps below, each logged to ``build/arm64/logs/STEP.log``:

1. ``laptop``: the sdist, and the board's wheels with ``pip download`` for the arm64 platform
   (docs/install.md, "With no network on the board");
2. ``install``: docs/install.md's commands on the board, from those files alone
   (``--no-index``): pip compiles dsp_c and cobs there;
3. ``main job``: ``bedside run --source sim:42 --speed max --duration 1h`` on the board, and
   the same here on x86-64; ``compare vitals`` then checks the two stores bit for bit;
4. ``trial boot``: the board's maintenance agent (``bedside agent``), paired with this
   machine's ``bedside-host``, is flashed a signed bundle; its boot manager compiles dsp_c
   from the bundle's source on the board and runs the health check before confirming it;
5. ``tests``: the unit's own tests (:data:`BOARD_TEST_RUNS`: dsp_c, the edge runtime, the store,
   the boot manager, the firmware protocol, the simulator's golden hashes) on the board.

A missing tool (debootstrap, qemu-user-static) is installed with apt-get where this runs as
root; otherwise one line says how. A failing step prints its log's last lines and one line
naming the step and the log. Run from the project root:

    .venv/bin/python deploy/arm64/check.py [--cache build/arm64] [--rebuild] [--no-apt]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SUITE = "bookworm"
ARCH = "arm64"
#: What docs/install.md has a board owner install with apt-get (the board's build tools).
BOARD_APT_PACKAGES = ("python3-venv", "python3-dev", "gcc", "make")
#: The board's glibc (bookworm, like Raspberry Pi OS Bookworm): wheels up to it run there.
BOARD_GLIBC_MINOR = 36
BOARD_PYTHON = "3.11"
#: The one dependency with no arm64 wheel: its sdist goes along and pip compiles it there.
SOURCE_ONLY_DEPENDENCIES = ("cobs",)
#: The tools this needs here (unshare and chroot come with every Debian system).
TOOLS = ("debootstrap", "qemu-aarch64-static")
#: The Debian packages that bring them; binfmt-support too, for update-binfmts by hand.
APT_PACKAGES = ("debootstrap", "qemu-user-static", "binfmt-support")
BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU_BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
APT_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))

#: The main job, on the board and here.
MAIN_JOB = ("run", "--source", "sim:42", "--speed", "max", "--duration", "1h", "--quiet")
BUNDLE_VERSION = "0.2.0"
#: The unit's own tests, run on the board against the installed package: the DSP core, the
#: edge runtime (pipeline, quality model, store), the boot manager, the firmware protocol,
#: and the simulator's golden hashes. In two processes: on aarch64, loading tflite-runtime
#: (the quality gate) turns on flush-to-zero for the whole process, and the tests that make
#: subnormal floats (the store's round trips) refuse to run there; the first process never
#: loads it.
BOARD_TEST_RUNS = (
    (
        "tests/dsp_c",
        "tests/edge/test_store.py",
        "tests/edge/test_serial_frames.py",
        "tests/edge/test_sim.py::test_samples_are_bit_for_bit_those_of_the_per_block_renderer",
        "tests/edge/test_sim.py::test_exp_is_exactly_zero_below_the_skip_limit",
        "tests/edge/test_sim.py::test_the_same_seed_gives_the_same_night_and_another_seed_another",
    ),
    (
        "tests/edge/test_pipeline.py",
        "tests/edge/test_model.py",
        "tests/host/test_boot.py",
    ),
)
#: Left out on the board (make test runs them here): timed for a native CPU, or minutes long
#: under emulation while other tests cover the same code there.
BOARD_DESELECT = (
    # a writer killed after 0.2 s must have written twice: emulated Python starts slower
    "tests/host/test_boot.py::test_atomic_write_survives_kill_minus_9",
    # kills at random points of a boot, each one a new emulated Python: minutes
    "tests/host/test_boot.py::test_kill_minus_9_anywhere_in_boot_leaves_a_bootable_unit",
    # a whole night against a full disk: 2 min emulated; the main job runs a night's hour
    "tests/edge/test_pipeline.py::test_a_full_disk_all_night_is_said_once_then_rarely",
)
#: What the tests read from the project tree besides the installed package.
TEST_TREE = ("tests", "docs", "pyproject.toml", "dsp_c")

VENV = "/opt/bedside/venv"
STATE = "/var/lib/bedside"
RELEASE = "/root/release"  # where the laptop's wheels/ goes (the sdist in it)
BOARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Runs a script on the board: in a mount namespace of its own (so /proc and /dev are
#: unmounted by the kernel when it ends, whatever happens), with a clean environment (none
#: of this machine's pip settings), under qemu through binfmt_misc.
_ENTER_BOARD = (
    'r="$1"; mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" || exit 90; '
    'exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TZ=UTC BEDSIDE_CONFIG= '
    f'PATH={BOARD_PATH} /bin/sh -ec "$2"'
)


class StopError(Exception):
    """Stops ``make arm64`` with one line (and, for a step, its log's tail first)."""

    def __init__(self, line: str, log: Path | None = None) -> None:
        super().__init__(line)
        self.line = line
        self.log = log


# --- tools ------------------------------------------------------------------------------------


def missing_tools() -> list[str]:
    """The commands in :data:`TOOLS` that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def can_apt() -> bool:
    """True where this may install Debian packages itself: root, with apt-get."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def install_hint() -> str:
    """The command that installs what is missing."""
    return "apt-get install " + " ".join(APT_PACKAGES) + " (as root)"


def ensure_tools(*, allow_apt: bool, log: Path) -> None:
    """Install the missing tools with apt-get where allowed and possible, or stop."""
    missing = missing_tools()
    if missing and allow_apt and can_apt():
        print(f"make arm64: installing {' '.join(APT_PACKAGES)} (apt-get), log {_rel(log)}")
        install = ["apt-get", "install", "-y", "-q", *APT_PACKAGES]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        with log.open("a") as out:
            done = subprocess.run(install, stdout=out, stderr=out, env=env).returncode == 0
            if not done:  # a stale package list: update it once
                subprocess.run(["apt-get", "update", "-q"], stdout=out, stderr=out, env=env)
                subprocess.run(install, stdout=out, stderr=out, env=env)
        missing = missing_tools()
    if missing:
        raise StopError(f"make arm64: {' and '.join(missing)} not found: {install_hint()}")


def ensure_binfmt() -> None:
    """Let the kernel run arm64 programs with qemu: register qemu-aarch64 in binfmt_misc.

    The entry comes from qemu-user-static's own binfmt.d file (flag F: the interpreter is
    opened now, so it works inside the root file system too). Systemd does this at boot on a
    machine that runs it; a container or a machine without it needs it done here.
    """
    entry = BINFMT / "qemu-aarch64"
    if entry.exists() and entry.read_text().startswith("enabled"):
        return
    hint = "make arm64: cannot run arm64 programs (no qemu-aarch64 in binfmt_misc): as root, "
    hint += "update-binfmts --enable qemu-aarch64, or modprobe binfmt_misc first"
    try:
        if not (BINFMT / "register").exists():
            subprocess.run(
                ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                check=True,
                capture_output=True,
            )
        if not entry.exists():
            (BINFMT / "register").write_text(QEMU_BINFMT_CONF.read_text().strip())
        else:
            entry.write_text("1")
    except (OSError, subprocess.CalledProcessError) as err:
        raise StopError(f"{hint} ({err})") from None
    if not (entry.exists() and entry.read_text().startswith("enabled")):
        raise StopError(hint)


def debian_mirror(sources: Sequence[Path] = APT_SOURCES) -> str:
    """The Debian mirror this machine's apt uses for ``SUITE`` (the board gets the same).

    Reads deb822 ``.sources`` files and one-line ``sources.list`` entries; stops with one
    line when none serves the suite.
    """
    files: list[Path] = []
    for path in sources:
        files += (
            sorted(path.glob("*.sources")) + sorted(path.glob("*.list")) if path.is_dir() else []
        )
        files += [path] if path.is_file() else []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
                    if "enabled: no" not in stanza.lower():
                        return fields["URIs"].split()[0]
        else:
            for line in text.splitlines():
                found = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if found and found.group(2) == SUITE:
                    return found.group(1)
    raise StopError(
        f"make arm64: no Debian {SUITE} mirror in this machine's apt sources: "
        "run it on a Debian bookworm machine, or set ARM64_MIRROR=URL"
    )


# --- steps ------------------------------------------------------------------------------------


def run_step(
    name: str,
    command: Sequence[str],
    log: Path,
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> str:
    """Run one step's command, its output appended to ``log``; return that output.

    Stops ``make arm64`` with the step's name and log when it fails or runs out of time.
    """
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        begin = out.tell()
        # Straight into the log, so that a long step can be followed there; a session of
        # its own, so that a timeout ends the step's children too.
        proc = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout_s)
        except BaseException as stopped:  # out of time, or Ctrl-C
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if not isinstance(stopped, subprocess.TimeoutExpired):
                raise
            out.write(f"[timed out after {timeout_s:g} s]\n")
            raise StopError(
                f'make arm64: step "{name}" timed out after {timeout_s:g} s', log
            ) from None
    with log.open("rb") as f:
        f.seek(begin)
        output = f.read().decode(errors="replace")
    with log.open("a") as out:
        out.write(f"[exit {returncode}, {time.monotonic() - started:.1f} s]\n")
    if returncode:
        raise StopError(f'make arm64: step "{name}" failed (exit {returncode})', log)
    return output


def _rel(path: Path) -> str:
    """``path`` relative to the project root where it is inside it (for messages)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class Board:
    """The emulated board: a root file system entered with chroot under qemu-user."""

    def __init__(self, root: Path, logs: Path) -> None:
        self.root = root
        self.logs = logs

    def command(self, script: str) -> list[str]:
        """The command that runs ``script`` (sh, ``-e``) as root on the board."""
        return ["unshare", "--mount", "--propagation", "private", "--"] + [
            "sh",
            "-c",
            _ENTER_BOARD,
            "board",
            str(self.root),
            script,
        ]

    def run(self, step: str, script: str, *, timeout_s: float) -> str:
        """Run ``script`` on the board as the step ``step``; its output."""
        log = self.logs / f"{_slug(step)}.log"
        return run_step(step, self.command(script), log, timeout_s=timeout_s)

    def path(self, inside: str) -> Path:
        """Where a path of the board is on this machine."""
        return self.root / inside.lstrip("/")


def _slug(step: str) -> str:
    return step.replace(" ", "-")


# --- the laptop's part ------------------------------------------------------------------------


def make_sdist(out: Path, log: Path) -> Path:
    """The release's sdist, built from this tree (its egg-info kept out of the tree)."""
    shutil.rmtree(out, ignore_errors=True)
    egg = out / "egg-info"
    egg.mkdir(parents=True)
    command = [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(egg)]
    command += ["sdist", "--dist-dir", str(out)]
    run_step("laptop", command, log, timeout_s=300)
    (sdist,) = out.glob("*.tar.gz")
    return sdist


def platform_flags() -> list[str]:
    """pip's flags for the board: CPython 3.11 on aarch64, manylinux up to its glibc."""
    flags = []
    for minor in range(BOARD_GLIBC_MINOR, 16, -1):
        flags += ["--platform", f"manylinux_2_{minor}_aarch64"]
    flags += ["--platform", "manylinux2014_aarch64"]  # the older name of manylinux_2_17
    abi = "cp" + BOARD_PYTHON.replace(".", "")
    return flags + ["--python-version", BOARD_PYTHON, "--implementation", "cp", "--abi", abi]


def build_requirements() -> list[str]:
    """What pip needs to build the sdist on the board (pyproject.toml's build-system)."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        return list(tomllib.load(f)["build-system"]["requires"])


def download_commands(sdist: str, dest: str, *, extras: str = "") -> list[list[str]]:
    """The ``pip download`` commands that fetch what the board installs from ``sdist``.

    First the source-only dependencies (sdists: compiled on the board), then every wheel of
    the sdist's dependencies and build requirements for the board's platform.
    """
    pip = [sys.executable, "-m", "pip", "download", "--dest", dest]
    first = pip + ["--no-deps", "--no-binary=:all:", *SOURCE_ONLY_DEPENDENCIES]
    sources = [f"{dest}/{name}-*.tar.gz" for name in SOURCE_ONLY_DEPENDENCIES]
    second = pip + ["--only-binary=:all:", *platform_flags(), sdist + extras, *sources]
    return [first, second + build_requirements()]


def download_wheels(sdist: Path, dest: Path, log: Path) -> None:
    """Fill ``dest`` with what the board installs (the test tools too)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for command in download_commands(str(sdist), str(dest), extras="[test]"):
        expanded = []
        for arg in command:  # the shell's glob, as in docs/install.md
            expanded += sorted(map(str, dest.glob(Path(arg).name))) if "*" in arg else [arg]
        run_step("laptop", expanded, log, timeout_s=600)


# --- the board --------------------------------------------------------------------------------


def base_root(cache: Path, *, rebuild: bool, log: Path) -> Path:
    """The cached root file system as debootstrap made it (made when missing or stale)."""
    base = cache / "base"
    stamp = base / ".bedside-arm64"
    mirror = os.environ.get("ARM64_MIRROR") or debian_mirror()
    wanted = json.dumps({"suite": SUITE, "arch": ARCH, "packages": BOARD_APT_PACKAGES})
    if not rebuild and stamp.is_file() and stamp.read_text() == wanted:
        return base
    shutil.rmtree(base, ignore_errors=True)
    partial = cache / "base.partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"make arm64: building the {SUITE} {ARCH} root file system (debootstrap, a few min)")
    command = ["debootstrap", f"--arch={ARCH}", "--variant=minbase"]
    command += ["--include=" + ",".join(BOARD_APT_PACKAGES), SUITE, str(partial), mirror]
    run_step("debootstrap", command, log, timeout_s=1800)
    partial.rename(base)
    stamp.write_text(wanted)
    return base


def fresh_board(cache: Path, base: Path, logs: Path) -> Board:
    """A new board: a copy of the base root file system."""
    root = cache / "board"
    shutil.rmtree(root, ignore_errors=True)
    run_step("new board", ["cp", "-a", str(base), str(root)], logs / "new-board.log", timeout_s=600)
    return Board(root, logs)


def offline_install(sdist_name: str) -> str:
    """docs/install.md's install with no network, run where ``wheels/`` is (pip download put
    the sdist there too)."""
    return f"{VENV}/bin/pip install --no-index --find-links wheels wheels/{sdist_name}"


def install(board: Board, sdist: Path, wheels: Path) -> None:
    """docs/install.md on the board with no network: the laptop's wheels/, then pip."""
    release = board.path(RELEASE)
    release.mkdir(parents=True)
    shutil.copytree(wheels, release / "wheels")
    board.run(
        "install",
        f"cd {RELEASE}\npython3 -m venv {VENV}\n{offline_install(sdist.name)}\n"
        f"{VENV}/bin/bedside --version",
        timeout_s=1800,
    )


def main_job(board: Board, cache: Path, logs: Path) -> tuple[Path, Path, str]:
    """The main job on the board and here: (board store, x86 store, the board's timing)."""
    here = cache / "x86.db"
    for db in cache.glob("x86.db*"):
        db.unlink()
    started = time.monotonic()
    board.run(
        "main job",
        f"mkdir -p {STATE}\n{VENV}/bin/bedside {' '.join(MAIN_JOB)} --db {STATE}/main-job.db",
        timeout_s=1200,
    )
    took = f"{time.monotonic() - started:.1f} s"
    env = {**os.environ, "BEDSIDE_CONFIG": "", "TZ": "UTC"}
    command = [sys.executable, "-m", "edge", *MAIN_JOB, "--db", str(here)]
    run_step("main job", command, logs / "main-job.log", timeout_s=600, env=env)
    return board.path(f"{STATE}/main-job.db"), here, took


def stored_vitals(db: Path) -> list[tuple]:
    """Every stored epoch and event, floats as their exact bits (``float.hex``).

    The times are relative to the session's first epoch, to the microsecond: their origin is
    the wall clock when each run started; everything else must be identical.
    """
    sys.path.insert(0, str(ROOT))
    from edge.store import Store

    rows: list[tuple] = []
    with Store(str(db), readonly=True) as store:
        epochs = [epoch for _, epoch in store.epochs()]
        events = [event for _, event in store.events()]
    t0 = epochs[0].t_utc if epochs else 0.0
    for record in (*epochs, *events):
        values = dict(vars(record))
        values["t_utc"] = round(values["t_utc"] - t0, 6)
        exact = (v.hex() if isinstance(v, float) else v for v in values.values())
        rows.append((type(record).__name__, *exact))
    return rows


def compare_vitals(board_db: Path, here_db: Path) -> str:
    """One line saying the two stores hold the same vitals; stops on the first difference."""
    log = here_db.parent / "logs" / "compare-vitals.log"
    board_rows, here_rows = stored_vitals(board_db), stored_vitals(here_db)
    with log.open("w") as out:
        for a, b in zip(board_rows, here_rows, strict=False):
            if a != b:
                out.write(f"arm64: {a}\nx86-64: {b}\n")
                raise StopError('make arm64: step "compare vitals" failed: a record differs', log)
        if len(board_rows) != len(here_rows):
            out.write(f"arm64: {len(board_rows)} records, x86-64: {len(here_rows)}\n")
            raise StopError('make arm64: step "compare vitals" failed: record counts differ', log)
        epochs = sum(row[0] == "Epoch" for row in here_rows)
        line = (
            f"{epochs} epochs and {len(here_rows) - epochs} events, identical bit for bit "
            "(times from the first epoch)"
        )
        out.write(line + "\n")
    return line


def trial_boot(board: Board, cache: Path, logs: Path) -> str:
    """Flash a signed bundle to the board's agent from here; the flash's last line.

    The unit's side is as docs/install.md and docs/hardware-engineer.md set it up: the
    release key's public half in the state folder, a pairing window opened at the console.
    """
    log = logs / "trial-boot.log"
    keys = cache / "keys"
    shutil.rmtree(keys, ignore_errors=True)
    env = {**os.environ, "BEDSIDE_KEYS": str(keys), "BEDSIDE_CONFIG": ""}
    host = [sys.executable, "-m", "host_tools"]
    run_step("trial boot", host + ["keys", "init"], log, timeout_s=60, env=env)
    run_step("trial boot", host + ["keys", "init", "--release"], log, timeout_s=60, env=env)
    shutil.copy2(keys / "release.pub", board.path(RELEASE))
    board.run(
        "trial boot",
        f"install -D -m 644 {RELEASE}/release.pub {STATE}/keys/release.pub\ntouch {STATE}/pairing",
        timeout_s=120,
    )
    bundle = cache / f"bedside-{BUNDLE_VERSION}.bundle"
    build = ["bundle", "build", "--version", BUNDLE_VERSION, "--out", str(bundle)]
    run_step("trial boot", host + build, log, timeout_s=300, env=env)
    agent_log = logs / "agent.log"
    script = f"exec {VENV}/bin/bedside agent --port listen://127.0.0.1:0 --state {STATE}"
    with agent_log.open("w") as err:
        agent = subprocess.Popen(
            board.command(script), stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        url = _agent_url(agent, agent_log)
        run_step(
            "trial boot", host + ["keys", "authorize", "--port", url], log, timeout_s=300, env=env
        )
        flash = ["flash", str(bundle), "--port", url, "--wait", "900"]
        out = run_step("trial boot", host + flash, log, timeout_s=1200, env=env)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(60)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    last = out.strip().splitlines()[-1]
    if "confirmed" not in last:
        raise StopError(f'make arm64: step "trial boot" failed: the flash said "{last}"', log)
    return last


def _agent_url(agent: subprocess.Popen, log: Path) -> str:
    """The URL the board's agent listens on (its first line: ``... on socket://...``)."""
    line = agent.stdout.readline() if agent.stdout else ""
    found = re.search(r"(socket://\S+)", line)
    if found is None:
        agent.wait(30)
        raise StopError('make arm64: step "trial boot" failed: the agent did not start', log)
    return found.group(1)


def board_tests(board: Board) -> str:
    """The unit's tests on the board, against the installed package; pytest's summaries.

    They run from a copy of this tree's tests and of the files they read (docs, the C
    sources and their build script), with no Python package in it: ``import dsp_c`` finds
    the installed one, in pytest and in the processes the tests start from there.
    """
    tree = board.path("/root/tree")
    tree.mkdir(parents=True)
    for name in TEST_TREE:
        source = ROOT / name
        if source.is_file():
            shutil.copy2(source, tree / name)
            continue
        skip = ("__pycache__", "*.pyc", "*.so", "*.o", "_bcg_dsp.c")
        # no __init__.py: not a package, so the installed dsp_c is the one imported (a
        # regular package wins over a folder without one wherever it is on sys.path)
        skip += ("__init__.py",) if name == "dsp_c" else ()
        shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns(*skip))
    deselect = " ".join(f"--deselect {test}" for test in BOARD_DESELECT)
    pytest = f"{VENV}/bin/pytest -q -p no:cacheprovider --durations=5 {deselect}"
    # each run's summary line is kept; both runs run, and the step fails if either failed
    runs = "".join(f"{pytest} {' '.join(tests)} || failed=1\n" for tests in BOARD_TEST_RUNS)
    out = board.run(
        "tests",
        # the test extra's tools only: the package is installed already
        f"cd {RELEASE}\n{VENV}/bin/pip install --no-index --find-links wheels "
        f"'bedside-bcg[test]'\ncd /root/tree\nfailed=0\n{runs}exit $failed",
        timeout_s=2400,
    )
    summaries = re.findall(r"^=* ?(\d+ passed.*?) ?=*$", out, re.M)
    return "; ".join(summaries)


# --- the command ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make arm64",
        description="Install and run the unit on an emulated arm64 board (Debian bookworm).",
    )
    parser.add_argument(
        "--cache", default=str(ROOT / "build" / "arm64"), help="root file system and logs"
    )
    parser.add_argument("--rebuild", action="store_true", help="debootstrap the board again")
    parser.add_argument(
        "--no-apt", action="store_true", help="never apt-get a missing tool: say how, and stop"
    )
    parser.add_argument(
        "--tools-only", action="store_true", help="check (or install) the tools, then stop"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``make arm64``: 0 when every step passed, 1 with one line otherwise."""
    args = parse_args(argv)
    cache = Path(args.cache).resolve()
    try:
        if cache.exists() and not cache.is_dir():
            raise StopError(f"make arm64: --cache {args.cache} is a file: give a folder")
        logs = cache / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        ensure_tools(allow_apt=not args.no_apt, log=logs / "apt.log")
        if args.tools_only:
            return 0
        ensure_binfmt()
        return check(cache, logs, rebuild=args.rebuild)
    except StopError as stop:
        if stop.log is not None and stop.log.exists():
            tail = stop.log.read_text(errors="replace").splitlines()[-25:]
            print("\n".join(f"  | {line}" for line in tail), file=sys.stderr)
            print(f"{stop.line}; log: {_rel(stop.log)}", file=sys.stderr)
        else:
            print(stop.line, file=sys.stderr)
        return 1


def check(cache: Path, logs: Path, *, rebuild: bool) -> int:
    """Every step, in order, each printing one line as it passes."""
    begin = time.monotonic()

    def passed(step: str, what: str) -> None:
        print(f"make arm64: {step:<14} ok  {what}  [{time.monotonic() - begin:5.0f} s]", flush=True)

    base = base_root(cache, rebuild=rebuild, log=logs / "debootstrap.log")
    passed("root fs", f"{SUITE} {ARCH} in {_rel(base)}")
    sdist = make_sdist(cache / "dist", logs / "laptop.log")
    download_wheels(sdist, cache / "wheels", logs / "laptop.log")
    count = len(list((cache / "wheels").iterdir()))
    passed("laptop", f"{sdist.name} and {count} files for the board in {_rel(cache / 'wheels')}")
    board = fresh_board(cache, base, logs)
    install(board, sdist, cache / "wheels")
    passed("install", f"pip install --no-index {sdist.name} into {VENV}")
    board_db, here_db, took = main_job(board, cache, logs)
    passed("main job", f"bedside {' '.join(MAIN_JOB[:-1])} in {took} on the board")
    passed("compare vitals", compare_vitals(board_db, here_db))
    passed("trial boot", trial_boot(board, cache, logs))
    passed("tests", board_tests(board))
    print(
        f"make arm64: all steps passed in {time.monotonic() - begin:.0f} s (logs in {_rel(logs)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
