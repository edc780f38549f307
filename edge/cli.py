"""``bedside``: the unit's command line (also ``python -m edge``).

    bedside run --source sim:42 --speed max --db build/night.db     # a simulated night
    bedside run --source replay:night.edf --channel bcg             # a recording, real time
    bedside run                                  # under systemd: everything from the config
    bedside report --db night.db --out night.html

Every failure prints one line, ``error E<code>: what happened — what to do``, and exits
non-zero (1; 2 for a command line that cannot be parsed). ``run`` exits 0 after a clean
stop, including SIGTERM and SIGINT: the night so far is saved and the session closed.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from .config import BAD_OPTION, Config, find_config, load_config, parse_duration, parse_speed
from .errors import BedsideError, fail
from .version import software_version

if TYPE_CHECKING:  # imported when a run starts, so `bedside --help` stays quick
    from .pipeline import Pipeline, Settings
    from .sources import Source
    from .store import Store

__all__ = ["RunParts", "main", "open_run", "run_config"]

RUN_EXAMPLES = """examples:
  bedside run --source sim:42 --speed max --duration 8h --db build/night.db
  bedside run --source replay:night.edf --channel bcg --speed 60x
  bedside run --source serial:/dev/ttyAMA0 --config /etc/bedside/bedside.toml
  bedside run        (everything from the config file, as the systemd service does)"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistyped command line reported as one ``error E280`` line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error {BAD_OPTION}: {self.prog}: {message} — see {self.prog} --help\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bedside",
        description="The bedside BCG unit: record vitals all night, report a night.",
        epilog="example: bedside run --source sim:42 --speed max --db build/night.db",
    )
    parser.add_argument("--version", action="version", version=f"bedside {software_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="source -> DSP -> quality gate -> vitals -> store, until stopped",
        description="Record vitals from a source into the store until the source ends,\n"
        "--duration is reached, or SIGTERM/SIGINT (a clean stop: nothing is lost).",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--source", help="sim[:SEED] | replay:PATH | serial:PORT (config run.source)")
    run.add_argument("--db", help="the vitals store, SQLite (config run.db; vitals.db)")
    run.add_argument("--config", help="TOML config (default $BEDSIDE_CONFIG or /etc/bedside/…)")
    run.add_argument("--duration", help="stop after this much signal: 8h, 90m, 30s")
    run.add_argument("--speed", help="sim/replay: max | realtime | e.g. 60x (default realtime)")
    run.add_argument("--epoch", type=float, metavar="S", help="epoch length, 1..300 s (30)")
    run.add_argument("--fs", type=float, help="sampling rate: the sensor's, the sim's (250)")
    run.add_argument("--channel", help="replay: the channel to read (default the raw sensor)")
    run.add_argument("--model", help="the quality model .tflite (default the packaged one)")
    run.add_argument(
        "--no-gate",
        action="store_true",
        help="bench/debug: no quality model, every window counts as good (no empty bed!)",
    )
    run.add_argument("--report", metavar="PATH", help="write the night report here at the end")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("--quiet", action="store_true", help="no status line, no summary")

    from . import report_pages  # `bedside report` and `bedside nights` (issue 17)

    report_pages.add_parsers(commands)
    from .maint import agent  # the maintenance agent (issue 7): `bedside agent`

    agent.add_parser(commands)
    from .maint import boot  # the A/B boot manager (issue 7): `bedside boot`

    boot.add_parser(commands)
    return parser


# --- bedside run -----------------------------------------------------------------------


class _StopFlag:
    """Set by SIGTERM/SIGINT; the pipeline checks it between chunks. Further signals while
    the night is being saved change nothing: an interrupted save would leave the session
    open (a stop takes well under a second; a stop that hangs is ended by SIGKILL, as
    systemd sends after its stop timeout, and the store recovers the session as unclean)."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.repeats = 0  # signals after the first

    def __call__(self) -> str | None:
        return f"stopped by {self.signal}" if self.signal else None

    def handle(self, signum: int, frame) -> None:
        if self.signal is not None:
            self.repeats += 1
            return
        self.signal = signal.Signals(signum).name


def _status_line(out: TextIO):
    def show(status) -> None:
        h, rem = divmod(int(status.stream_s), 3600)
        bed = {True: "in bed", False: "empty", None: "-"}[status.occupied]
        hr = f"HR {status.hr_bpm:.0f}" if status.hr_bpm is not None else "HR -"
        rr = f"RR {status.rr_bpm:.0f}" if status.rr_bpm is not None else "RR -"
        q = f"q {status.quality:.2f}" if status.quality is not None else "q -"
        speed = status.stream_s / status.wall_s if status.wall_s > 0 else 0.0
        progress = ""
        if status.total_s and speed > 0:  # a sim or a replay: how far, and how long to go
            left = max(status.total_s - status.stream_s, 0.0) / speed
            progress = f"  {100 * status.stream_s / status.total_s:3.0f}% ETA {left:4.0f} s"
        line = (
            f"{h:d}:{rem // 60:02d}:{rem % 60:02d}  {bed:6s}  {status.state or '-':6s}  "
            f"{hr:6s}  {rr:5s}  {q}  epochs {status.epochs} ({status.committed} saved)  "
            f"{speed:.0f}x{progress}"
        )
        out.write("\r" + line[:120] + "\033[K")
        out.flush()

    return show


def _night_done(store, live: bool):
    """Print a session's summary when the daily ``new_session_at`` closes it."""
    from .summary import summary_of_session

    def show(session_id: int) -> None:
        if live:
            print()
        try:
            print(summary_of_session(store, session_id).format_text(), flush=True)
        except BedsideError:  # a night without epochs (E264): nothing to sum up
            print(f"session {session_id} closed: no epoch was recorded", flush=True)

    return show


@dataclass
class RunParts:
    """What ``bedside run`` wires together for a config: an open source, the quality gate,
    the open store and the pipeline settings. The accuracy harness (:mod:`edge.eval.product`)
    builds its replays here too, so it scores exactly what the unit stores."""

    source: Source
    gate: Any  # QualityGate, or OpenGate with the gate disabled
    store: Store
    settings: Settings

    def pipeline(self, **options: Any) -> Pipeline:
        """The :class:`edge.pipeline.Pipeline` over these parts (``options``: its keyword
        arguments such as ``on_status``)."""
        from .pipeline import Pipeline

        return Pipeline(
            self.source,
            self.store,
            self.gate,
            self.settings,
            software_version=software_version(),
            **options,
        )


def open_run(config: Config, fs: float | None = None) -> RunParts:
    """Open the source, the gate and the store that ``config`` names (``fs``: the ``--fs``
    override); the caller runs :meth:`RunParts.pipeline` and closes the store.

    Raises:
        BedsideError: E280 for an impossible rate or speed, E281 without a source, and the
            source's, the gate's and the store's own errors (nothing is left open then).
    """
    from .pipeline import OpenGate, Settings
    from .sources import open_source
    from .store import Store

    if fs is not None and not 50 <= fs <= 1000:
        fail(BAD_OPTION, f"--fs {fs:g} is outside 50..1000 Hz", "give the real rate")
    if not config.run_source:
        raise BedsideError(
            "E281",
            "no source — pass --source sim[:SEED], replay:PATH or serial:PORT, "
            "or set run.source in the config",
        )
    speed = parse_speed(config.run_speed)
    duration_s = parse_duration(config.run_duration) if config.run_duration else None
    kind = config.run_source.partition(":")[0]
    # sensor.fs is the cable's rate; a simulation defaults to 250 Hz and a recording
    # states its own, unless --fs says otherwise.
    if fs is None and kind == "serial":
        fs = config.sensor_fs
    if kind == "serial" and speed != 1.0:
        fail(BAD_OPTION, f"--speed {config.run_speed}: a sensor runs in real time", "leave it out")
    source = open_source(
        config.run_source,
        fs=fs,
        channel=config.sensor_channel or None,
        speed=speed,
        duration_s=duration_s,
    )
    try:
        if config.gate_enabled:
            from .quality import QualityGate

            gate = QualityGate(source.fs, model_path=config.gate_model or None)
        else:
            gate = OpenGate(source.fs)
        store = Store(config.run_db, max_bytes=int(config.store_max_mb * 2**20))
    except BaseException:
        source.close()
        raise
    follow = getattr(source, "follow", None)  # a simulated night: after the stored ones
    if follow is not None:
        follow(s.ended_utc or s.started_utc for s in store.sessions())
    settings = Settings(
        epoch_s=config.run_epoch_s,
        duration_s=duration_s,
        commit_s=config.store_commit_s,
        commit_epochs=config.store_commit_epochs,
        stall_s=config.sensor_stall_s,
        bed_entry_s=config.events_bed_entry_s,
        bed_exit_s=config.events_bed_exit_s,
        hr_range_bpm=(config.events_hr_low_bpm, config.events_hr_high_bpm),
        rr_range_bpm=(config.events_rr_low_bpm, config.events_rr_high_bpm),
        range_hold_s=config.events_range_hold_s,
        new_session_at=config.run_new_session_at or None,
    )
    return RunParts(source, gate, store, settings)


def run_config(args: argparse.Namespace) -> Config:
    """The config of ``bedside run``: the config file, then the command line over it."""
    return load_config(find_config(args.config)).with_overrides(
        {
            "run_source": ("--source", args.source),
            "run_db": ("--db", args.db),
            "run_speed": ("--speed", args.speed),
            "run_duration": ("--duration", args.duration),
            "run_epoch_s": ("--epoch", args.epoch),
            "sensor_channel": ("--channel", args.channel),
            "gate_model": ("--model", args.model),
            "gate_enabled": ("--no-gate", False if args.no_gate else None),
        }
    )


def _run(args: argparse.Namespace) -> int:
    config = run_config(args)
    parts = open_run(config, fs=args.fs)
    stop = _StopFlag()
    # Installed until the command is done, summary and report included: a signal during the
    # stop, or after it, must not cut the saving short or end the process with a traceback.
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run_night(args, config, parts, stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run_night(args: argparse.Namespace, config, parts, stop: _StopFlag) -> int:
    from .heartbeat import Heartbeat
    from .summary import summary_of_session

    source, store = parts.source, parts.store
    live = sys.stdout.isatty() and not (args.quiet or args.json)
    talk = not (args.quiet or args.json)
    # Beside the store: how the agent (`bedside-host status`) knows this run records.
    heartbeat = Heartbeat(config.run_db, release=software_version(), source=source.name)
    stopped_because = "failed as it started"
    try:
        if talk:
            gate_text = "on" if config.gate_enabled else "OFF (--no-gate)"
            print(
                f"bedside run: {source.name} at {source.fs:g} Hz -> {Path(config.run_db).name}, "
                f"{config.run_epoch_s:g} s epochs, gate {gate_text}",
                flush=True,
            )
        pipeline = parts.pipeline(
            on_status=_status_line(sys.stdout) if live else None,
            on_new_session=_night_done(store, live) if talk else None,
            heartbeat=heartbeat,
        )
        try:
            result = pipeline.run(should_stop=stop)
        finally:  # the reason the pipeline recorded, also when it raised
            if pipeline.result is not None:
                stopped_because = pipeline.result.reason
        summary = summary_of_session(store, result.session_id)
    finally:
        heartbeat.stopped(stopped_because)  # first: a failing close still ends the run
        store.close()
        if live:
            print()
    report_path = None
    if args.report:
        report_path = _write_report(config.run_db, args.report, result.session_id)
    if args.json:
        out = {
            "session_id": result.session_id,
            "sessions": result.sessions,
            "db": str(config.run_db),
            "source": source.name,
            "reason": result.reason,
            "samples": result.samples,
            "stream_s": result.stream_s,
            "wall_s": round(result.wall_s, 3),
            "epochs": result.epochs,
            "events": result.events,
            "store_errors": result.store_errors,
            "store_failures": result.store_failures,
            "report": report_path,
            "summary": summary.as_dict(),
        }
        print(json.dumps(out))
    elif talk:
        print(
            f"{result.reason}: {result.stream_s / 3600:.2f} h of signal in "
            f"{result.wall_s:.1f} s, {result.epochs} epochs and {result.events} events saved "
            f"(session {result.session_id})"
        )
        print(summary.format_text())
        if report_path:
            print(f"report: {report_path}")
    return 0


# --- bedside report ----------------------------------------------------------------------


def _write_report(db: str, out: str, session_id: int | None) -> str:
    from .report import write_report

    return str(write_report(db, out, session_id=session_id))


def _report(args: argparse.Namespace) -> int:
    from .report_pages import nights_command, report_command

    return (report_command if args.command == "report" else nights_command)(args)


def main(argv: list[str] | None = None) -> int:
    """Run the ``bedside`` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    # Warnings of the running unit (a lost link, a failed commit) to stderr: the journal
    # under systemd.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "agent":
            from .maint.agent import run_command

            return run_command(args)
        if args.command == "boot":
            from .maint.boot import run_command as boot_command

            return boot_command(args)
        return {"run": _run, "report": _report, "nights": _report}[args.command](args)
    except BedsideError as exc:
        print(f"error {exc.code}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # dsp_c.DspValueError (bad samples from a source: E108)
        if not hasattr(exc, "code"):  # not imported here: `bedside --help` needs no numpy
            raise
        print(f"error {exc.code}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
