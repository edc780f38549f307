"""``bedside-host flash`` and ``rollback``, and the slot lines of ``status``.

    bedside-host flash build/bedside-0.2.0.bundle --port /dev/ttyACM0
    bedside-host rollback --port /dev/ttyACM0

``flash`` sends the bundle in chunks as large as the link allows, each acknowledged only
once the unit has fsynced it. The upload is keyed by the bundle's SHA-256: when the link is
cut or the agent restarts, ``flash`` reconnects (or is simply run again) and the unit says
how much it holds, so only the rest is sent. The unit then verifies the whole file, unpacks
it into its inactive slot and runs the trial boot; ``flash`` waits for the outcome and exits
0 only when the new software passed its health check and was confirmed (E352 when the unit
rolled back by itself).
"""

from __future__ import annotations

import contextlib
import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from edge.errors import BedsideError, fail
from edge.link import Client, Command, LinkError
from edge.maint import bundle as bundles
from edge.maint.flash import NO_UPLOAD

from .ui import connect, emit, json_option, keys_option, port_option, progress, trace_option

__all__ = ["flash_bundle", "format_slots", "rollback", "slot_info", "wait_for_trial"]

HEALTH_FAILED = "E352"
GAVE_UP = "E357"
#: Reconnects in a row without a byte of progress before ``flash`` gives up.
MAX_RECONNECTS = 8
#: How long to wait for the unit's trial boot (dsp_c build and health check) to decide.
TRIAL_WAIT_S = 300.0
#: How often ``flash`` asks the unit how its trial boot goes (the stages' resolution).
TRIAL_POLL_S = 0.25
#: What ``flash`` shows for each stage: its upload, then what the unit reports it does
#: (the unit's ``flash.finish`` times verify, check and unpack; ``slots.status`` says which
#: stage of the trial boot it is in).
STAGES = {
    "upload": "upload",
    "verify": "unit: SHA-256 of the whole upload",
    "check": "unit: every file checked against the signed manifest",
    "unpack": "unit: unpacked into the inactive slot",
    "boot": "unit: trial boot starting",
    "build": "unit: trial boot: files checked, compiling dsp_c",
    "health": "unit: trial boot: health check",
}
#: The trial boot's stages in order: a confirmed trial went through all of them.
TRIAL_STAGES = ("boot", "build", "health")
_RESYNC = (NO_UPLOAD,)  # the unit holds another offset: ask it again with flash.begin

Connect = Callable[[], contextlib.AbstractContextManager[Client]]


def flash_bundle(
    open_unit: Connect,
    path: Path,
    *,
    force: bool = False,
    boot: bool = True,
    wait_s: float = TRIAL_WAIT_S,
    show_progress: bool = True,
    chunk_bytes: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
    on_stage: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Upload ``path`` (resuming), have the unit install it, wait for its trial boot.

    Args:
        open_unit: opens an authenticated :class:`Client` (a context manager); called again
            after a cut link.
        path: the bundle file.
        force: allow a downgrade.
        boot: start the trial boot at once and wait for its outcome (else it happens at the
            unit's next boot).
        wait_s: how long to wait for the outcome.
        chunk_bytes: cap on a chunk's size (default: what the link allows).
        on_chunk: called with the unit's offset after each acknowledged chunk (tests).
        on_stage: called with ``{"stage", "elapsed"}`` as each stage starts (see
            :data:`STAGES`): the upload, then what the unit reports it is doing.

    Returns:
        ``{"version", "slot", "sha256", "bytes", "sent", "seconds", "upload_seconds",
        "reconnects", "outcome", "stages"}``: ``seconds`` from the first request to the
        outcome, ``stages`` each stage's ``{"stage", "elapsed", "seconds"}``,
        ``upload_seconds`` the chunks alone (of the last connection); outcome is
        "confirmed", "trial pending" (without ``boot``) or "already confirmed" (the unit
        runs this very bundle: nothing was sent or changed).

    Raises:
        BedsideError: the unit's refusal (E340-E355), E352 the health check failed and the
            unit rolled back, E357 the link kept failing or no outcome in ``wait_s``.
    """
    path = Path(path)
    raw, signature = bundles.read_manifest(path)
    manifest = bundles.Manifest.parse(raw)
    sha, size = bundles.file_sha256(path), path.stat().st_size
    begin = {"sha256": sha, "size": size, "signature": signature.hex(), "force": force}
    t0, sent, reconnects, failures, upload_s = time.monotonic(), 0, 0, 0, 0.0
    timeline = _Timeline(t0, on_stage)
    done: dict | None = None  # flash.finish's reply, once the unit installed the bundle
    clients: list[Client] = []  # their own reconnects (the link reopens a cut port) count too
    last_problem = ""
    with contextlib.ExitStack() as stack:
        bar, shown = None, 0
        while True:
            if failures > MAX_RECONNECTS:
                fail(
                    GAVE_UP,
                    f"the link failed {failures} times in a row without progress ({last_problem})",
                    "check the cable and run the same flash again: it resumes where it stopped",
                )
            try:
                with open_unit() as unit:
                    clients.append(unit)
                    if done is None:  # after finish, a reconnect only waits for the boot
                        reply, _ = unit.call(Command.FLASH_BEGIN, begin, zlib.compress(raw, 9))
                        offset = reply["offset"]
                        if bar is None:  # only once the unit accepted the bundle
                            label = f"flash {manifest.version}"
                            timeline.start("upload")
                            bar = stack.enter_context(progress(size, label, enabled=show_progress))
                        bar.update(offset - shown)
                        shown = offset
                        step = min(unit.max_data, chunk_bytes or unit.max_data)
                        t_upload = time.monotonic()
                        with open(path, "rb") as f:
                            while offset < size:
                                f.seek(offset)
                                data = f.read(step)
                                args = {"sha256": sha, "offset": offset}
                                reply, _ = unit.call(Command.FLASH_CHUNK, args, data)
                                sent += len(data)
                                if reply["offset"] > offset:
                                    failures = 0  # progress: the reconnect budget starts again
                                offset = reply["offset"]
                                bar.update(offset - shown)
                                shown = offset
                                if on_chunk is not None:
                                    on_chunk(offset)
                        upload_s = time.monotonic() - t_upload
                        bar.close()  # the stages print below it
                        args = {"sha256": sha, "force": force, "boot": boot}
                        t_finish = time.monotonic()
                        done, _ = unit.call(Command.FLASH_FINISH, args, timeout_s=120.0)
                        # The unit timed its stages within the call: placed from its start.
                        for stage in done.get("stages", []):
                            timeline.start(stage["stage"], at=t_finish)
                            t_finish += stage["seconds"]
                    outcome = "trial pending"
                    if done.get("trial") is False:
                        outcome = "already confirmed"
                    elif boot:
                        wait_for_trial(
                            unit, done["slot"], sha, wait_s=wait_s, on_stage=timeline.start
                        )
                        outcome = "confirmed"
                    t_done = time.monotonic()  # (closing the port is not part of the flash)
                    break
            except BedsideError as exc:
                if not isinstance(exc, LinkError) and exc.code not in _RESYNC:
                    raise
                failures += 1
                reconnects += 1
                last_problem = f"{exc.code}: {exc}"
                time.sleep(min(0.25 * 2**failures, 5.0))
    return {
        "version": manifest.version,
        "slot": done["slot"],
        "sha256": sha,
        "bytes": size,
        "sent": sent,
        "seconds": round(t_done - t0, 3),
        "upload_seconds": round(upload_s, 3),
        "reconnects": reconnects
        + sum(getattr(c, "stats", {}).get("reconnects", 0) for c in clients),
        "outcome": outcome,
        "stages": timeline.stages(t_done),
    }


class _Timeline:
    """The stages of one flash as they start: told to ``on_stage``, timed at the end."""

    def __init__(self, t0: float, on_stage: Callable[[dict[str, Any]], None] | None) -> None:
        self._t0 = t0
        self._on_stage = on_stage
        self._started: list[tuple[str, float]] = []

    def start(self, stage: str, *, at: float | None = None) -> None:
        """Stage ``stage`` started ``at`` (default now); a stage already current is not
        started again."""
        if self._started and self._started[-1][0] == stage:
            return
        at = time.monotonic() if at is None else at
        self._started.append((stage, at))
        if self._on_stage is not None:
            self._on_stage({"stage": stage, "elapsed": round(at - self._t0, 3)})

    def stages(self, t_end: float) -> list[dict[str, Any]]:
        """Each stage with its start (``elapsed`` since the flash began) and duration."""
        ends = [at for _, at in self._started[1:]] + [t_end]
        return [
            {"stage": stage, "elapsed": round(at - self._t0, 3), "seconds": round(end - at, 3)}
            for (stage, at), end in zip(self._started, ends, strict=True)
        ]


def wait_for_trial(
    unit: Client,
    slot: str,
    sha: str,
    *,
    wait_s: float = TRIAL_WAIT_S,
    on_stage: Callable[[str], None] | None = None,
) -> dict:
    """Poll the unit until the trial of bundle ``sha`` in ``slot`` is confirmed or rolled back;
    ``on_stage`` is told each stage the unit reports the trial in (``trial_stage``), and, at
    the confirmation, those of :data:`TRIAL_STAGES` that were over between two looks.

    Raises:
        BedsideError: E352 the unit rolled back (its reason in the message), E357 no outcome
            within ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    seen = -1  # the last of TRIAL_STAGES told to on_stage
    while True:
        state, _ = unit.call(Command.SLOTS_STATUS)
        info = state["slots"][slot]
        stage = state.get("trial_stage")
        if on_stage is not None and state.get("trial") == slot and stage:
            on_stage(stage)
            if stage in TRIAL_STAGES:
                seen = max(seen, TRIAL_STAGES.index(stage))
        if info.get("sha256") == sha and state["confirmed"] == slot:
            if on_stage is not None:  # it passed them all: those over between two looks too
                for missed in TRIAL_STAGES[seen + 1 :]:
                    on_stage(missed)
            return state
        if info.get("sha256") == sha and info["status"] == "failed":
            reached = state.get("failed_stage", {}).get(slot)  # an older unit: none
            if on_stage is not None and reached:
                on_stage(reached)  # the stage it failed in, if polling missed it
            fail(
                HEALTH_FAILED,
                f"version {info['version']} failed its trial boot and the unit rolled back "
                f"to slot {state['confirmed']} ({info.get('reason', 'no reason given')})",
                "fix the software (see the unit's logs/boot.log) and flash a new bundle",
            )
        if info.get("sha256") != sha:
            fail(
                HEALTH_FAILED,
                f"slot {slot} no longer holds this bundle (another flash replaced it)",
                "check `bedside-host status`",
            )
        if time.monotonic() > deadline:
            fail(
                GAVE_UP,
                f"the unit did not finish the trial boot of slot {slot} in {wait_s:.0f} s",
                "check `bedside-host status` later: the unit decides by itself",
            )
        time.sleep(TRIAL_POLL_S)


def slot_info(unit: Client) -> dict[str, Any]:
    """The unit's slots (for ``status``): versions, statuses, confirmed, active."""
    state, _ = unit.call(Command.SLOTS_STATUS)
    return state


def format_slots(state: dict[str, Any]) -> str:
    """Lines for ``status``: one per slot, marking the confirmed and the trial slot."""
    lines = []
    for name in ("a", "b"):
        info = state["slots"][name]
        marks = []
        if name == state["confirmed"]:
            marks.append("confirmed, running")
        if name == state.get("trial"):
            marks.append(f"trial boot pending (attempt {state['trial_boots']})")
        version = info.get("version") or "-"
        reason = (
            f": {info['reason']}" if info.get("status") == "failed" and "reason" in info else ""
        )
        lines.append(
            f"slot {name}: {version:10s} {info['status']}{reason}"
            + (f"  [{'; '.join(marks)}]" if marks else "")
        )
    if state.get("last"):
        lines.append(f"last: {state['last']['utc']} {state['last']['detail']}")
    return "\n".join(lines)


def rollback(unit: Client) -> dict[str, Any]:
    """Ask the unit to cancel its trial or go back to its previous slot."""
    state, _ = unit.call(Command.SLOTS_ROLLBACK)
    return state


@click.command(
    "flash",
    epilog="example: bedside-host flash build/bedside-0.2.0.bundle --port socket://127.0.0.1:5555",
)
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@port_option
@keys_option
@trace_option
@json_option
@click.option("--force-downgrade", is_flag=True, help="allow a version older than the unit's")
@click.option("--no-boot", is_flag=True, help="install as trial; the unit's next boot checks it")
@click.option("--wait", type=float, default=TRIAL_WAIT_S, show_default=True, help="s for the trial")
def flash_command(
    bundle: Path,
    port: str,
    keys: Path | None,
    trace: bool,
    as_json: bool,
    force_downgrade: bool,
    no_boot: bool,
    wait: float,
) -> None:
    """Send BUNDLE to the unit (resumable), install it in the inactive slot, trial-boot it.

    After the upload's progress bar, each stage the unit reports (verify, unpack, trial
    boot: dsp_c build, health check) is shown as it starts, with the seconds since the
    flash began (on stderr; with --json as one JSON record a line)."""

    def show_stage(record: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(record), err=True)
        elif record["stage"] != "upload":  # the bar shows that one
            text = STAGES.get(record["stage"], record["stage"])
            click.echo(f"{record['elapsed']:6.1f} s  {text}", err=True)

    result = flash_bundle(
        lambda: connect(port, keys=keys, trace=trace),
        bundle,
        force=force_downgrade,
        boot=not no_boot,
        wait_s=wait,
        show_progress=not as_json,
        on_stage=show_stage,
    )
    rate = result["bytes"] / max(result["seconds"], 1e-9)
    resumed = f", resumed {result['reconnects']} times" if result["reconnects"] else ""
    emit(
        result,
        as_json,
        text=(
            f"version {result['version']} in slot {result['slot']}: {result['outcome']} "
            f"({result['bytes']} bytes, {result['seconds']:.1f} s, {rate / 1000:.1f} kB/s"
            f"{resumed})"
        ),
    )


@click.command("rollback", epilog="example: bedside-host rollback --port /dev/ttyACM0")
@port_option
@keys_option
@trace_option
@json_option
def rollback_command(port: str, keys: Path | None, trace: bool, as_json: bool) -> None:
    """Cancel a pending trial, or go back to the unit's previous software slot."""
    with connect(port, keys=keys, trace=trace) as unit:
        state = rollback(unit)
    emit(state, as_json, text=format_slots(state))
