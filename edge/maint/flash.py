"""The agent's flashing commands: a resumable upload, verified install into a slot, rollback.

Commands (all need an authenticated host; ``register(agent)`` adds them)::

    flash.begin   {sha256, size, signature, force}  data: zlib(manifest.json) -> {offset}
    flash.chunk   {sha256, offset}                  data: bundle bytes -> {offset}
    flash.status  {sha256}                                             -> {offset, size}
    flash.finish  {sha256, force, boot}          -> {slot, version, stages: [{stage, seconds}]}
    slots.status  {}                             -> the slots (slots.summary), trial_stage,
                                                    failed_stage
    slots.rollback {}                                                  -> the slots after it
    slots.boot    {}                                                   -> {started}
    keys.release  {public_key}                  -> {fingerprint, installed, replaced}

An upload is kept in ``DIR/incoming/<sha256>.part``, every chunk fsynced before it is
acknowledged; ``begin`` answers with the offset the unit already holds, so a host whose link
was cut, or whose agent was killed, resends only the rest. ``begin`` checks the signed
manifest first (signature, hardware, version), so a bundle the unit would refuse is refused
before it is sent. ``finish`` checks the whole file's SHA-256, verifies every file of the
bundle once without writing, then unpacks it into the slot that is not confirmed and marks
that slot for a trial boot. Nothing is confirmed here: the boot manager (:mod:`edge.maint.boot`)
confirms the trial after its health check or rolls back; ``boot`` asks it to run now.

The release key (``DIR/keys/release.pub``, what every bundle's signature is checked with) is
provisioned with ``keys.release``: a unit without one takes it from an authenticated host;
replacing the key a unit already trusts also needs its pairing window open (physical
access, as for pairing), since whoever sets it decides what software the unit accepts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import BedsideError, fail
from ..files import atomic_write, fsync_dir
from ..link.auth import PublicKey
from ..link.commands import Command
from . import bundle as bundles
from .boot import BUILT_MARK
from .slots import Slots, summary

__all__ = ["Flasher", "install_release_key", "register", "release_key_path"]

log = logging.getLogger(__name__)

UPLOAD_DAMAGED = "E349"
NO_UPLOAD = "E350"
BAD_REQUEST = "E354"
NO_ROOM = "E355"
RELEASE_KEY_REFUSED = "E386"

#: A bundle file larger than this is refused at ``begin`` (compressed; the unpacked limit
#: is :data:`edge.maint.bundle.MAX_TOTAL_BYTES`).
MAX_BUNDLE_BYTES = 128 * 2**20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def release_key_path(state_dir: str | os.PathLike) -> Path:
    """Where a unit keeps the release public key it checks bundles with."""
    return Path(state_dir) / "keys" / "release.pub"


def install_release_key(state_dir: str | os.PathLike, key: PublicKey) -> PublicKey | None:
    """Make ``key`` the release key of the unit in ``state_dir`` (written atomically).

    Returns the key it replaced (None when there was none, or it was this one). Who may call
    it is the caller's rule: the agent's ``keys.release`` checks it, a virtual unit's
    ``--release-key`` is its owner at its console."""
    try:
        before = bundles.load_release_key(state_dir)
    except BedsideError:  # none yet, or unreadable: either way replaced by a good one
        before = None
    path = release_key_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (key.line() + "\n").encode())
    return before if before is not None and before.raw != key.raw else None


class Flasher:
    """The unit's side of flashing, for the agent's handlers (and for tests without a link).

    Args:
        state_dir: the unit's state folder.
        hardware: this unit's hardware id (``device.json``).
        factory_version: the installed software's version.
        pairing: the unit's pairing window (``is_open()``, ``close()``); replacing a release
            key needs it open. None: a release key, once set, is never replaced.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        hardware: str,
        factory_version: str,
        identity: dict | None = None,
        pairing: Any = None,
    ):
        self.state_dir = Path(state_dir)
        self.pairing = pairing
        self.incoming = self.state_dir / "incoming"
        self.hardware = hardware
        self.slots = Slots(self.state_dir, factory_version=factory_version)
        #: The agent's identity: its software_version follows the confirmed slot.
        self.identity = identity if identity is not None else {}

    # --- the upload ------------------------------------------------------------------------

    def begin(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """Start or resume the upload of a bundle; answers the offset to send from."""
        sha, size = _sha_arg(args), args.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size:
            fail(BAD_REQUEST, f"flash.begin: bad size {size!r}", "update bedside-host")
        if size > MAX_BUNDLE_BYTES:
            bundles.refuse_too_large(f"a bundle file of {size} bytes")
        try:
            signature = bytes.fromhex(str(args.get("signature", "")))
        except ValueError:
            signature = b""
        # Refuse early what finish would refuse anyway: a wrong key, hardware or version.
        manifest = bundles.verify_manifest(_inflate(data), signature, self._release_key())
        self._check(manifest, force=bool(args.get("force")))
        part, meta = self._paths(sha)
        installed = self._installed(sha)
        if installed and not meta.exists():  # a retry after finish: nothing more to send
            return {"offset": size, "size": size, "version": manifest.version}, b""
        self.incoming.mkdir(parents=True, exist_ok=True)
        self._drop_other_uploads(sha)
        if not meta.exists():
            free = shutil.disk_usage(self.incoming).free
            need = size + 2 * manifest.total_bytes  # the file, the slot, a verify margin
            if free < need:
                fail(
                    NO_ROOM,
                    f"the unit has {free // 2**20} MiB free, the bundle needs {need // 2**20}",
                    "free space on the unit (old logs) and flash again",
                )
            atomic_write(meta, json.dumps({"size": size, "version": manifest.version}).encode())
        if self._meta(sha)["size"] != size:
            fail(BAD_REQUEST, "flash.begin: size differs from the upload started", "retry")
        part.touch(exist_ok=True)
        fsync_dir(self.incoming)
        offset = part.stat().st_size
        log.info(
            "upload %s: version %s, %d of %d bytes held", sha[:12], manifest.version, offset, size
        )
        return {"offset": offset, "size": size, "version": manifest.version}, b""

    def chunk(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """Append ``data`` at ``offset``; answers the offset the unit now holds (fsynced)."""
        sha, offset = _sha_arg(args), args.get("offset")
        part, _ = self._paths(sha)
        size = self._meta(sha)["size"]
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            fail(BAD_REQUEST, f"flash.chunk: bad offset {offset!r}", "update bedside-host")
        held = part.stat().st_size if part.exists() else 0
        if offset + len(data) <= held:
            return {"offset": held}, b""  # already here (a resend after a restart)
        if offset != held:
            fail(
                NO_UPLOAD,
                f"chunk at byte {offset}, but the unit holds {held} bytes of this upload",
                "run the flash again: it resumes from what the unit holds",
            )
        if held + len(data) > size:
            fail(UPLOAD_DAMAGED, "more bytes than the bundle's size", "run the flash again")
        with open(part, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return {"offset": held + len(data)}, b""

    def status(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """How much of an upload the unit holds (0 when it holds none)."""
        sha = _sha_arg(args)
        part, meta = self._paths(sha)
        if not meta.exists():
            return {"offset": 0, "size": None}, b""
        return {"offset": part.stat().st_size if part.exists() else 0, **self._meta(sha)}, b""

    def finish(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """Check the whole upload, unpack it into the other slot, mark it for a trial boot."""
        sha = _sha_arg(args)
        part, meta = self._paths(sha)
        if not meta.exists():
            # Finished already (its reply lost to a cut link, or the agent restarted).
            slot = self._installed(sha)
            if slot is None:
                fail(NO_UPLOAD, "the unit holds no upload of this bundle", "run the flash again")
            state = self.slots.load()
            version = state["slots"][slot]["version"]
            if slot == state["confirmed"]:
                return {
                    "slot": slot,
                    "version": version,
                    "trial": False,
                    "boot_started": False,
                }, b""
            return self._finished(slot, version, args), b""
        size, held = self._meta(sha)["size"], part.stat().st_size if part.exists() else 0
        if held != size:
            fail(
                UPLOAD_DAMAGED,
                f"the upload is incomplete: {held} of {size} bytes",
                "run the flash again: it resumes from what the unit holds",
            )
        stages = _Stages()
        with stages.timed("verify"):
            whole = bundles.file_sha256(part)
        if whole != sha:
            part.unlink()
            meta.unlink()
            fail(
                UPLOAD_DAMAGED,
                "the uploaded bundle's SHA-256 differs from the host's: it was damaged",
                "run the flash again (it starts over)",
            )
        key = self._release_key()
        force = bool(args.get("force"))

        def check(manifest: bundles.Manifest) -> None:
            self._check(manifest, force=force)

        with self.slots.locked(wait=False):
            # Verify every file before touching a slot: a refused bundle changes nothing,
            # and its upload is deleted (it can never become acceptable).
            try:
                with stages.timed("check"):
                    manifest = bundles.unpack(part, None, key, check=check)
            except BedsideError:
                part.unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                raise
            state = self.slots.load()
            target = self.slots.begin_install(state)
            with stages.timed("unpack"):
                bundles.unpack(part, self.slots.slot_dir(target), key, check=check)
                self.slots.mark_trial(target, version=manifest.version, sha256=sha)
        # The bundle first, durably, then its record: a disk may keep the second unlink and
        # lose the first, and a .part without its record is never cleaned (make crashcheck).
        part.unlink()
        fsync_dir(self.incoming)
        meta.unlink()
        fsync_dir(self.incoming)
        log.info(
            "bundle %s unpacked into slot %s, waiting for its trial boot", manifest.version, target
        )
        return {**self._finished(target, manifest.version, args), "stages": stages.done}, b""

    def _finished(self, slot: str, version: str, args: dict) -> dict:
        started = self.start_boot() if args.get("boot") else False
        return {"slot": slot, "version": version, "trial": True, "boot_started": started}

    def trial_stage(self, state: dict[str, Any]) -> str | None:
        """What the pending trial boot is doing now, from the boot manager's own marks:
        "boot" until it counted its attempt, "build" (files checked, dsp_c compiled) until
        the slot's dsp_c carries its built mark, then "health"; None with no trial."""
        trial = state["trial"]
        if trial is None:
            return None
        if state["trial_boots"] == 0:
            return "boot"
        return self._stage_reached(trial)

    def _stage_reached(self, slot: str) -> str:
        """ "health" once the slot's dsp_c carries its built mark, else "build"."""
        built = self.slots.slot_dir(slot) / "dsp_c" / BUILT_MARK
        return "health" if built.exists() else "build"

    # --- slots -----------------------------------------------------------------------------

    def slot_status(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """The slots: versions, statuses, which is confirmed, which boots next, and the
        stage a pending trial boot is in (``trial_stage``, :meth:`trial_stage`)."""
        state = self._noted(self.slots.load())
        # Where a failed trial stopped, for a host whose polling missed a short last stage.
        failed = {
            name: self._stage_reached(name)
            for name, slot in state["slots"].items()
            if slot.get("status") == "failed"
        }
        return {
            **summary(state),
            "trial_stage": self.trial_stage(state),
            "failed_stage": failed,
        }, b""

    def _noted(self, state: dict[str, Any]) -> dict[str, Any]:
        """Keep ``identify``'s software_version the confirmed slot's version."""
        version = state["slots"][state["confirmed"]]["version"]
        if version:
            self.identity["software_version"] = version
        return state

    def rollback(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """Cancel a pending trial, or go back to the previous confirmed slot."""
        with self.slots.locked(wait=False):
            state = self._noted(self.slots.roll_back(self.slots.load()))
        log.warning("rollback by the operator: %s", state["history"][-1]["detail"])
        return summary(state), b""

    def boot(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """Run the boot manager's trial check now (in the background)."""
        return {"started": self.start_boot()}, b""

    def start_boot(self) -> bool:
        """Start ``bedside boot --check-only`` detached; its log is ``DIR/logs/boot.log``.

        On a unit the service restart runs the same boot manager; starting it here lets
        the host see the trial's outcome at once (``slots.status``)."""
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "boot.log", "ab") as out:
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edge",
                    "boot",
                    "--state",
                    str(self.state_dir),
                    "--check-only",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives a restart of the agent
            )
        return True

    # --- the release key -------------------------------------------------------------------

    def release_key(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """Install the release public key ``args["public_key"]`` (a key line).

        A unit without a release key takes it; the same key again changes nothing; another
        key replaces the current one only while the pairing window is open (E386)."""
        key = PublicKey.parse(str(args.get("public_key", "")))
        try:
            current = bundles.load_release_key(self.state_dir)
        except BedsideError:
            current = None
        if current is not None and current.raw == key.raw:
            return {"fingerprint": key.fingerprint, "installed": False, "replaced": None}, b""
        window_open = self.pairing is not None and self.pairing.is_open()
        if current is not None and not window_open:
            fail(
                RELEASE_KEY_REFUSED,
                f"the unit already trusts release key {current.fingerprint}, not "
                f"{key.fingerprint}; replacing it needs physical access",
                "press the unit's pairing button (or touch DIR/pairing on it) and run this "
                "again within 10 minutes",
            )
        install_release_key(self.state_dir, key)
        if current is not None:
            self.pairing.close()  # one replacement per press, as one pairing per press
        log.warning(
            "release key %s installed%s",
            key.fingerprint,
            f" (replaces {current.fingerprint})" if current else "",
        )
        replaced = current.fingerprint if current else None
        return {"fingerprint": key.fingerprint, "installed": True, "replaced": replaced}, b""

    # --- helpers ---------------------------------------------------------------------------

    def _release_key(self) -> PublicKey:
        try:
            return bundles.load_release_key(self.state_dir)
        except BedsideError as exc:
            if exc.code != bundles.NO_RELEASE_KEY:
                raise
        # The host that sees this can fix it: name the command (issue 17).
        fail(
            bundles.NO_RELEASE_KEY,
            "the unit has no readable release key (keys/release.pub), so it accepts no bundle",
            "install yours from the laptop that signs the bundles: bedside-host keys provision "
            "--port PORT (a virtual unit: bedside-host sim takes it at start)",
        )

    def _check(self, manifest: bundles.Manifest, *, force: bool) -> None:
        state = self.slots.load()
        running = state["slots"][state["confirmed"]]["version"] or "unknown"
        bundles.check_install(
            manifest, hardware=self.hardware, running_version=running, force=force
        )

    def _installed(self, sha: str) -> str | None:
        """The slot holding bundle ``sha`` as the pending trial or the confirmed software."""
        state = self.slots.load()
        for slot in (state["trial"], state["confirmed"]):
            if slot is not None and state["slots"][slot]["sha256"] == sha:
                return slot
        return None

    def _paths(self, sha: str) -> tuple[Path, Path]:
        return self.incoming / f"{sha}.part", self.incoming / f"{sha}.json"

    def _meta(self, sha: str) -> dict[str, Any]:
        try:
            meta = json.loads(self._paths(sha)[1].read_bytes())
            if isinstance(meta.get("size"), int):
                return meta
        except (OSError, ValueError):
            pass
        fail(NO_UPLOAD, "the unit holds no upload of this bundle", "run the flash again")

    def _drop_other_uploads(self, keep: str) -> None:
        """One upload at a time: an abandoned one would otherwise hold the disk forever."""
        for path in self.incoming.iterdir():
            if not path.name.startswith(keep):
                path.unlink(missing_ok=True)


class _Stages:
    """The stages of one request with the seconds each took, for the host to show."""

    def __init__(self) -> None:
        self.done: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.monotonic()
        yield
        self.done.append({"stage": stage, "seconds": round(time.monotonic() - t0, 3)})


def _sha_arg(args: dict) -> str:
    sha = args.get("sha256")
    if not isinstance(sha, str) or not _SHA_RE.match(sha):
        fail(BAD_REQUEST, "sha256: expected 64 lower-case hex digits", "update bedside-host")
    return sha


def _inflate(data: bytes) -> bytes:
    """The manifest from ``flash.begin``'s data: zlib-compressed (its hex hashes halve)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, bundles.MAX_MANIFEST_BYTES + 1)
    except zlib.error:
        raw = b""
    if not raw or len(raw) > bundles.MAX_MANIFEST_BYTES or not inflater.eof:
        fail(BAD_REQUEST, "flash.begin: the manifest is not zlib data of a sane size", "retry")
    return raw


def register(agent) -> Flasher:
    """Add the flashing and slot commands to ``agent`` (an :class:`edge.maint.agent.Agent`)."""
    flasher = Flasher(
        agent.state_dir,
        hardware=agent.identity["hardware"],
        factory_version=agent.identity.get("software_version", "unknown"),
        identity=agent.identity,
        pairing=agent.pairing,
    )
    try:
        flasher._noted(flasher.slots.load())
    except BedsideError as exc:  # a damaged state: the agent still serves (status says E351)
        log.error("slot state: %s", exc)
    agent.command(Command.FLASH_BEGIN)(flasher.begin)
    agent.command(Command.FLASH_CHUNK)(flasher.chunk)
    agent.command(Command.FLASH_STATUS)(flasher.status)
    agent.command(Command.FLASH_FINISH)(flasher.finish)
    agent.command(Command.SLOTS_STATUS)(flasher.slot_status)
    agent.command(Command.SLOTS_ROLLBACK)(flasher.rollback)
    agent.command(Command.SLOTS_BOOT)(flasher.boot)
    agent.command(Command.RELEASE_KEY)(flasher.release_key)
    return flasher
