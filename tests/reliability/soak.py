"""The soak: a virtual unit for several simulated days under a steady host load, sampled.

    python tests/reliability/soak.py --days 3                  # `make soak`
    python tests/reliability/soak.py --days 0.05 --json s.json  # minutes of sim

The unit is the virtual unit's agent (``bedside-host sim --no-sensor``) and ``bedside run``
on the simulator at max speed, one session a day at 12:00 as an installed unit does, in
simulated nights of ``NIGHT_H`` hours (the simulator's longest); when one ends the runtime
is started again on the next night, as systemd's ``Restart=always`` does. A host
keeps it busy the whole time: a ``status`` request (identify and slots) every
``STATUS_EVERY_S``, and a ``logs pull`` (vitals, events, logs since the last cursor) every
``PULL_EVERY_S``. Every ``SAMPLE_EVERY_S`` the soak samples, from /proc, the resident memory
(RSS) and open file descriptors of the agent and of the runtime, the store's size on disk
(file and WAL), and the simulated time reached. The store's bound is small
(``STORE_MAX_MB``) so that retention runs: days of vitals go through a bounded file.

Bounded means, after the warm-up (the first ``WARMUP`` of the run, when caches, the model
and SQLite's page cache fill):

- memory: the median RSS of the last fifth is < 5% above the median of the first fifth
  after the warm-up, for the agent over the whole soak and for the runtime over its longest
  run (each restart is a new process);
- file descriptors: never more than ``FD_SLACK`` above the most seen during the warm-up;
- the store: it never passes its size bound, and its bytes per stored epoch do not grow;
- latency: the 95th percentile of status requests in the last fifth is within twice that of
  the first fifth after warm-up, plus 50 ms (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.link import Client  # noqa: E402
from edge.store import Store  # noqa: E402
from host_tools.flash import slot_info  # noqa: E402
from host_tools.keys import HostKey  # noqa: E402
from host_tools.logs import pull  # noqa: E402

STATUS_EVERY_S = 0.1
PULL_EVERY_S = 2.0
SAMPLE_EVERY_S = 0.25
WARMUP = 0.3
MAX_GROWTH = 0.05
FD_SLACK = 4
STORE_MAX_MB = 2
NIGHT_H = 48
EPOCH_S = 30.0  # the runtime's default epoch
CONFIG = f"""\
[run]
new_session_at = "12:00"
duration = "{NIGHT_H}h"
[store]
max_mb = {STORE_MAX_MB}
commit_s = 5
"""


@dataclass
class Sample:
    t: float  #: wall seconds since the start
    sim_days: float  #: simulated time in the store (first to last epoch)
    agent_rss: int
    agent_fds: int
    runtime_rss: int
    runtime_fds: int
    runtime_run: int  #: which start of the runtime (1, 2, ...)
    db_bytes: int
    epochs: int


@dataclass
class SoakReport:
    days: float
    wall_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    status_ms: list[tuple[float, float]] = field(default_factory=list)  #: (t, latency)
    pull_ms: list[tuple[float, float]] = field(default_factory=list)
    pulls: int = 0
    sessions: int = 0
    errors: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        f = self.figures
        lines = [
            f"soak: {f.get('sim_days', 0):.2f} simulated days in {self.wall_s:.0f} s, "
            f"{len(self.status_ms)} status requests, {self.pulls} pulls, "
            f"{self.sessions} sessions, {f.get('runtime_runs', 0)} runtime starts, "
            f"{len(self.samples)} samples",
        ]
        for name in ("agent", "runtime"):
            if f"{name}_rss_mb" in f:
                (before, after), fds = f[name + "_rss_mb"], f[name + "_fds"]
                lines.append(
                    f"  {name}: RSS {before:.1f} -> {after:.1f} MB "
                    f"({100 * f[name + '_growth']:+.1f}%), fds max {fds[0]} in the warm-up, "
                    f"{fds[1]} after"
                )
        if "db_mb" in f:
            lines.append(
                f"  store: {f['db_mb']:.2f} MB at the end (bound {STORE_MAX_MB} MB), "
                f"{f['bytes_per_epoch'][0]:.0f} -> {f['bytes_per_epoch'][1]:.0f} bytes/epoch"
            )
        if "status_p95_ms" in f:
            lines.append(
                f"  status latency p95 {f['status_p95_ms'][0]:.1f} -> "
                f"{f['status_p95_ms'][1]:.1f} ms; pull median {f['pull_median_ms']:.0f} ms"
            )
        lines += [f"  PROBLEM: {p}" for p in self.problems + self.errors]
        lines.append("  bounded: yes" if not self.problems and not self.errors else "  bounded: NO")
        return "\n".join(lines)


# --- /proc --------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


# --- the run ------------------------------------------------------------------------------------


class _Load(threading.Thread):
    """The host: status requests, and a pull every PULL_EVERY_S, on one link."""

    def __init__(self, url: str, key: HostKey, archive: Path, report: SoakReport, t0: float):
        super().__init__(daemon=True)
        self.url, self.key, self.archive, self.report, self.t0 = url, key, archive, report, t0
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with Client.open(self.url, timeout_s=5.0, retries=3) as client:
                client.authenticate(self.key)
                next_pull = time.monotonic()
                while not self.stop.is_set():
                    start = time.monotonic()
                    client.identify()
                    slot_info(client)
                    self.report.status_ms.append(
                        (start - self.t0, 1e3 * (time.monotonic() - start))
                    )
                    if start >= next_pull:
                        t = time.monotonic()
                        pull(client, self.archive)
                        self.report.pull_ms.append((t - self.t0, 1e3 * (time.monotonic() - t)))
                        self.report.pulls += 1
                        next_pull = t + PULL_EVERY_S
                    self.stop.wait(STATUS_EVERY_S)
        except Exception as exc:  # noqa: BLE001 - any failure under load is a finding
            self.report.errors.append(f"the host load failed: {exc!r}")


def soak(days: float, *, work: Path | None = None, max_wall_s: float = 3600.0) -> SoakReport:
    """Run the soak until ``days`` simulated days are stored (or ``max_wall_s``)."""
    report = SoakReport(days=days)
    with tempfile.TemporaryDirectory(prefix="soak-", dir=work) as tmp:
        tmp = Path(tmp)
        state, config = tmp / "unit", tmp / "bedside.toml"
        config.write_text(CONFIG)
        key = HostKey.generate(tmp / "keys", name="soak")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BEDSIDE_CONFIG": str(config)}
        cmd = [sys.executable, "-m", "host_tools", "sim", "--state", str(state), "--json"]
        cmd += ["--no-sensor", "--pairing"]
        unit = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        runtime = _Runtime(state, env)
        try:
            ready, _, _ = select.select([unit.stdout], [], [], 60)
            url = json.loads(unit.stdout.readline())["url"] if ready else None
            if url is None:
                raise RuntimeError("the virtual unit did not start")
            with Client.open(url) as client:
                client.authorize(key, "soak")
            t0 = time.monotonic()
            load = _Load(url, key, tmp / "archive", report, t0)
            load.start()
            _sample_until(report, unit.pid, runtime, days, t0, max_wall_s, load)
            load.stop.set()
            load.join(timeout=60)
            report.wall_s = time.monotonic() - t0
            with Store(state / "vitals.db", readonly=True) as store:
                report.sessions = len(store.sessions())
        finally:
            runtime.stop()
            unit.terminate()
            try:
                unit.wait(timeout=30)
            except subprocess.TimeoutExpired:
                unit.kill()
                unit.wait()
            unit.stdout.close()
            unit.stderr.close()
    judge(report)
    return report


class _Runtime:
    """``bedside run`` on the simulator, started again on the next night when one ends."""

    def __init__(self, state: Path, env: dict) -> None:
        self.state, self.env = state, env
        (state / "logs").mkdir(parents=True, exist_ok=True)
        self.runs = 0
        self.proc: subprocess.Popen | None = None
        self.log = open(state / "logs" / "runtime.log", "ab")  # noqa: SIM115 - closed in stop
        self.ensure()

    def ensure(self) -> int:
        """The running runtime's pid (starting the next night if the last one ended)."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None and self.proc.returncode != 0:
                raise RuntimeError(f"bedside run exited {self.proc.returncode}")
            self.runs += 1
            cmd = [sys.executable, "-m", "edge", "run", "--source", f"sim:{10 + self.runs}"]
            cmd += ["--speed", "max", "--db", str(self.state / "vitals.db"), "--quiet"]
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
            )
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # a clean stop: the night so far is saved
            self.proc.wait(timeout=30)
        self.log.close()


def _sample_until(report, agent_pid, runtime, days, t0, max_wall_s, load) -> None:
    db = runtime.state / "vitals.db"
    while time.monotonic() - t0 < max_wall_s and load.is_alive():
        time.sleep(SAMPLE_EVERY_S)
        try:
            runtime_pid = runtime.ensure()
        except RuntimeError as exc:
            report.errors.append(str(exc))
            return
        epochs, span = 0, 0.0
        if db.exists():
            try:
                with Store(db, readonly=True) as store:
                    conn = store._reader()
                    epochs, last_id = conn.execute(
                        "SELECT count(*), max(id) FROM epochs"
                    ).fetchone()
                    # Ids never repeat, and each restart starts again at today's date, so
                    # the simulated time is the epochs ever written, not a span of times.
                    span = (last_id or 0) * EPOCH_S
            except Exception:  # noqa: BLE001 - not made yet
                pass
        size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
        report.samples.append(
            Sample(
                t=time.monotonic() - t0,
                sim_days=span / 86400.0,
                agent_rss=rss_bytes(agent_pid),
                agent_fds=open_fds(agent_pid),
                runtime_rss=rss_bytes(runtime_pid),
                runtime_fds=open_fds(runtime_pid),
                runtime_run=runtime.runs,
                db_bytes=size,
                epochs=epochs,
            )
        )
        if span / 86400.0 >= days:
            return
    if not load.is_alive() and not report.errors:
        report.errors.append("the host load stopped")


def _fifths(values: list, start: int) -> tuple[list, list]:
    """The first and the last fifth of ``values[start:]``."""
    rest = values[start:]
    n = max(1, len(rest) // 5)
    return rest[:n], rest[-n:]


def judge(report: SoakReport) -> None:
    """Fill ``report.figures`` and ``report.problems`` (see the module docstring)."""
    s, f, problems = report.samples, report.figures, report.problems
    if len(s) < 10:
        problems.append(f"only {len(s)} samples: too short to judge")
        return
    f["sim_days"] = s[-1].sim_days
    warm = int(len(s) * WARMUP)
    runs = [x.runtime_run for x in s]
    longest = max(set(runs), key=runs.count)
    f["runtime_runs"] = max(runs)
    for name in ("agent", "runtime"):
        mine = s if name == "agent" else [x for x in s if x.runtime_run == longest]
        warm = int(len(mine) * WARMUP)
        rss = [getattr(x, f"{name}_rss") for x in mine]
        first, last = _fifths(rss, warm)
        before, after = statistics.median(first), statistics.median(last)
        if before == 0:
            problems.append(f"{name}: no memory sampled (process gone?)")
            continue
        growth = after / before - 1.0
        f[f"{name}_rss_mb"] = (before / 2**20, after / 2**20)
        f[f"{name}_growth"] = growth
        if growth >= MAX_GROWTH:
            problems.append(f"{name}: RSS grew {100 * growth:.1f}% after the warm-up")
        fds = [getattr(x, f"{name}_fds") for x in mine]
        f[f"{name}_fds"] = (max(fds[: warm + 1]), max(fds[warm:]))
        if max(fds[warm:]) > max(fds[: warm + 1]) + FD_SLACK:
            problems.append(f"{name}: open files grew {f[name + '_fds']}")
    warm = int(len(s) * WARMUP)
    f["db_mb"] = s[-1].db_bytes / 2**20
    if max(x.db_bytes for x in s) > STORE_MAX_MB * 2**20:
        problems.append("the store passed its size bound")
    per = [x.db_bytes / x.epochs for x in s[warm:] if x.epochs]
    if per:
        first, last = _fifths(per, 0)
        f["bytes_per_epoch"] = (statistics.median(first), statistics.median(last))
        if f["bytes_per_epoch"][1] > 1.2 * f["bytes_per_epoch"][0]:
            problems.append(f"the store's bytes per epoch grew: {f['bytes_per_epoch']}")
    lat = [ms for t, ms in report.status_ms if t >= s[warm].t]
    if len(lat) >= 20:
        first, last = _fifths(lat, 0)
        p95 = (_p95(first), _p95(last))
        f["status_p95_ms"] = p95
        if p95[1] > 2 * p95[0] + 50:
            problems.append(f"status latency grew: p95 {p95[0]:.1f} -> {p95[1]:.1f} ms")
    if report.pull_ms:
        f["pull_median_ms"] = statistics.median(ms for _, ms in report.pull_ms)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak a virtual unit; check it stays bounded.")
    parser.add_argument("--days", type=float, default=3.0, help="simulated days (3)")
    parser.add_argument("--max-wall", type=float, default=3600.0, help="give up after (s)")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    args = parser.parse_args(argv)
    report = soak(args.days, max_wall_s=args.max_wall)
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1) + "\n")
    return 0 if not report.problems and not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
