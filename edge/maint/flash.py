"""The agent's flashing commands: a resumable upload, verified install into a slot, rollback.

Commands (all need an authenticated host; ``register(agent)`` adds them)::

    flash.begin   {sha256, size, signature, force}  data: zlib(manifest.json) -> {offset}
    flash.chunk   {sha256, offset}                  data: bundle bytes -> {offset}
    flash.status  {sha256}                                             -> {offset, size}
    flash.finish  {sha256, force, boot}                                -> {slot, version}
    slots.status  {}                                                   -> the slots (slots.summary)
    slots.rollback {}                                                  -> the slots after it
    slots.boot    {}                                                   -> {started}

An upload is kept in ``DIR/incoming/<sha256>.part``, every chunk fsynced before it is
acknowledged; ``begin`` answers with the offset the unit already holds, so a host whose link
was cut, or whose agent was killed, resends only the rest. ``begin`` checks the signed
manifest first (signature, hardware, version), so a bundle the unit would refuse is refused
before it is sent. ``finish`` checks the whole file's SHA-256, verifies every file of the
bundle once without writing, then unpacks it into the slot that is not confirmed and marks
that slot for a trial boot. Nothing is confirmed here: the boot manager (:mod:`edge.maint.boot`)
confirms the trial after its health check or rolls back; ``boot`` asks it to run now.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

from ..errors import BedsideError, fail
from ..files import atomic_write, fsync_dir
from ..link.commands import Command
from . import bundle as bundles
from .slots import Slots, summary

__all__ = ["Flasher", "register"]

log = logging.getLogger(__name__)

UPLOAD_DAMAGED = "E349"
NO_UPLOAD = "E350"
BAD_REQUEST = "E354"
NO_ROOM = "E355"

#: A bundle file larger than this is refused at ``begin`` (compressed; the unpacked limit
#: is :data:`edge.maint.bundle.MAX_TOTAL_BYTES`).
MAX_BUNDLE_BYTES = 128 * 2**20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class Flasher:
    """The unit's side of flashing, for the agent's handlers (and for tests without a link).

    Args:
        state_dir: the unit's state folder.
        hardware: this unit's hardware id (``device.json``).
        factory_version: the installed software's version.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        hardware: str,
        factory_version: str,
        identity: dict | None = None,
    ):
        self.state_dir = Path(state_dir)
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
        if bundles.file_sha256(part) != sha:
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
                manifest = bundles.unpack(part, None, key, check=check)
            except BedsideError:
                part.unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                raise
            state = self.slots.load()
            target = self.slots.begin_install(state)
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
        return self._finished(target, manifest.version, args), b""

    def _finished(self, slot: str, version: str, args: dict) -> dict:
        started = self.start_boot() if args.get("boot") else False
        return {"slot": slot, "version": version, "trial": True, "boot_started": started}

    # --- slots -----------------------------------------------------------------------------

    def slot_status(self, args: dict, data: bytes) -> tuple[dict, bytes]:
        """The slots: versions, statuses, which is confirmed, which boots next."""
        return summary(self._noted(self.slots.load())), b""

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

    # --- helpers ---------------------------------------------------------------------------

    def _release_key(self):
        return bundles.load_release_key(self.state_dir)

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
    return flasher
