"""The Python fuzz targets: one function per parser that takes outside bytes.

Each target takes the fuzzer's bytes and returns normally when the parser behaved as
documented (a result, or a :class:`~edge.errors.BedsideError` with one of its codes); any
other exception, or a broken invariant (an ``AssertionError``), is a finding. The targets
need nothing but the project: ``tests/fuzz/atheris_main.py`` runs them under atheris
(``make fuzz``), and ``tests/fuzz/test_corpus.py`` replays the committed corpora and past
findings through them in ``make test``.
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.errors import BedsideError

__all__ = ["TARGETS"]


def _scratch(prefix: str) -> Path:
    """A temporary folder removed when the process ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _chunks(data: bytes, sizes: bytes) -> list[bytes]:
    """``data`` cut where ``sizes`` (one byte per cut, 1..256 bytes each) says."""
    out, at = [], 0
    for size in sizes:
        if at >= len(data):
            break
        out.append(data[at : at + size + 1])
        at += size + 1
    out.append(data[at:])
    return out


def _split(data: bytes) -> tuple[bytes, bytes]:
    """The first byte gives how many of the next bytes are cut sizes; the rest is payload."""
    if not data:
        return b"", b""
    n = data[0] % 16
    return data[1 : 1 + n], data[1 + n :]


# --- sensor frames (edge.sources.frames) ------------------------------------------------------


def _sensor_key(frame) -> tuple:
    fields = vars(frame) if hasattr(frame, "__dict__") else frame.__getstate__()
    return (type(frame).__name__,) + tuple(
        v.tobytes() if isinstance(v, np.ndarray) else v for v in fields.values()
    )


def sensor_frames(data: bytes) -> None:
    """decode_frame raises only E244/E245; FrameDecoder never raises, stays bounded, and
    gives the same frames whatever the chunking."""
    from edge.firmware.protocol import MAX_WIRE
    from edge.sources import frames as f

    sizes, payload = _split(data)
    try:
        f.decode_frame(payload)
    except f.FrameError as exc:
        assert exc.code in ("E244", "E245"), exc.code
    whole = f.FrameDecoder()
    expected = [_sensor_key(x) for x in whole.feed(payload)]
    chunked = f.FrameDecoder()
    got = []
    for chunk in _chunks(payload, sizes):
        got += [_sensor_key(x) for x in chunked.feed(chunk)]
        assert chunked.buffered <= MAX_WIRE, chunked.buffered
    assert got == expected
    assert chunked.counters.frames == whole.counters.frames == len(expected)


# --- link frames (edge.link.frame) ----------------------------------------------------------


def _link_key(item) -> tuple:
    from edge.link.frame import FrameError, Sealed

    if isinstance(item, FrameError):
        return ("error", str(item))
    if isinstance(item, Sealed):
        return ("sealed", item.head, item.box)
    return (item.kind, item.channel, item.seq, repr(item.header), item.data)


def link_frames(data: bytes) -> None:
    """decode_body raises only FrameError; the stream decoder never raises, keeps its buffer
    within the encoded max_frame, and yields the same items whatever the chunking."""
    from edge.link.frame import MIN_FRAME, Frame, FrameDecoder, FrameError, Sealed, decode_body

    sizes, payload = _split(data)
    try:
        assert isinstance(decode_body(payload), Frame | Sealed)
    except FrameError:
        pass
    max_frame = MIN_FRAME + (sizes[0] * 64 if sizes else 0)
    whole = FrameDecoder(max_frame)
    expected = [_link_key(x) for x in whole.feed(payload)]
    chunked = FrameDecoder(max_frame)
    got = []
    for chunk in _chunks(payload, sizes):
        got += [_link_key(x) for x in chunked.feed(chunk)]
        assert chunked.buffered <= chunked.max_encoded
    assert got == expected


# --- the agent's unauthenticated commands (edge.maint.agent): what a rogue host can send ----

_COMMANDS = (
    "hello",
    "identify",
    "auth.challenge",
    "auth.response",
    "keys.authorize",
    "ping",
    "logs.subscribe",
    "nope",
)


@functools.cache
def _agent():
    from edge.maint.agent import Agent

    state = _scratch("fuzz-agent-")
    agent = Agent("listen://127.0.0.1:0", state_dir=state, modules=())
    sent: list[bytes] = []
    agent._send_wire = sent.append  # replies are decoded here, not written to a socket
    return agent, sent


@functools.cache
def _ephemeral() -> str:
    """A host's session key for the challenge (one for the whole run: speed)."""
    import base64

    from edge.link.session import KeyExchange

    return base64.b64encode(KeyExchange().public).decode()


def agent_handshake(data: bytes) -> None:
    """What a host may send before it authenticates: every reply is a plain REPLY or ERROR
    with a documented code, never E307 (a handler that crashed), and nothing sealed.

    A first byte below 0x80 picks a command, the rest is its JSON arguments (after a pending
    challenge). From 0x80 on, the rest is raw link bytes, sealed frames included, fed
    through the agent's own receive path (they must be refused without a crash)."""
    from edge.link.frame import Frame, FrameDecoder, FrameError, Kind
    from edge.maint.agent import HANDLER_FAILED

    agent, sent = _agent()
    if not data:
        return
    sent.clear()
    if data[0] >= 0x80:
        for item in FrameDecoder(agent.max_frame).feed(data[1:]):
            if not isinstance(item, FrameError):
                agent._receive(item)
        expected = None
    else:
        seq = agent_handshake.seq = getattr(agent_handshake, "seq", 0) + 2
        name = _COMMANDS[data[0] % len(_COMMANDS)]
        try:
            args = json.loads(data[1:])
        except (ValueError, RecursionError):
            args = data[1:].decode("latin-1")
        challenge = {"cmd": "auth.challenge", "args": {"ephemeral": _ephemeral()}}
        agent._receive(Frame(Kind.REQUEST, seq, challenge))  # a pending nonce
        agent._receive(Frame(Kind.REQUEST, seq + 1, {"cmd": name, "args": args}))
        expected = 2
    decoder = FrameDecoder(1 << 20)
    replies = [item for wire in sent for item in decoder.feed(wire)]
    assert all(isinstance(r, Frame) for r in replies), replies  # nothing sealed, no garbage
    assert expected is None or len(replies) == expected, replies
    for reply in replies:
        assert reply.kind in (Kind.REPLY, Kind.ERROR), reply
        if reply.kind == Kind.ERROR:
            assert reply.header.get("code") != HANDLER_FAILED, reply.header


# --- log pages (edge.log_pages) ------------------------------------------------------------


def log_pages(data: bytes) -> None:
    """decode_page raises only E362. The first byte picks the column set and whether the
    rest is a page as sent (compressed) or the inside of one (compressed here, so the
    fuzzer reaches the header and column parsers past zlib)."""
    import zlib

    from edge import log_pages as lp

    if not data:
        return
    columns = (lp.EPOCH_COLUMNS, lp.EVENT_COLUMNS, lp.SESSION_COLUMNS)[data[0] % 3]
    blob = data[1:] if data[0] & 4 else zlib.compress(data[1:])
    try:
        rows = lp.decode_page(columns, blob)
    except BedsideError as exc:
        assert exc.code == "E362", exc.code
        return
    assert all(len(row) == len(columns) for row in rows)


# --- bundles (edge.maint.bundle) -------------------------------------------------------------


@functools.cache
def _release_key():
    from host_tools.keys import ReleaseKey

    return ReleaseKey.generate(_scratch("fuzz-keys-"), name="fuzz")


BUNDLE_CODES = {f"E34{d}" for d in range(9)}


def _signed_bundle(spec: bytes) -> bytes:
    """A gzipped bundle from ``spec``: parts split at each line ``--``; the first part is the
    manifest, signed here with the test release key, and each other part a member (its
    first line the name, the rest its bytes). What a holder of the release key could ship:
    so the checks behind the signature (paths, links, sizes, hashes) are fuzzed too."""
    import tarfile

    from edge.maint import bundle as b

    raw, *members = spec.split(b"\n--\n")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        head = [(b.MANIFEST_NAME, raw), (b.SIGNATURE_NAME, _release_key().sign(raw))]
        for name, body in head + [(m.split(b"\n", 1) + [b""])[:2] for m in members]:
            info = tarfile.TarInfo(name if isinstance(name, str) else name.decode("latin-1"))
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def bundle(data: bytes) -> None:
    """A hostile bundle: the manifest parser, read_manifest and unpack (into a slot in a
    temporary folder) raise only E340-E348, a failed unpack leaves nothing behind, and a
    successful one holds exactly the manifest's files. The first byte picks what the rest
    is: 0 a bundle file, 1 a manifest, 2 a manifest and members signed here."""
    from edge.maint import bundle as b

    if not data:
        return
    mode = data[0] % 3
    key = _release_key().public
    with tempfile.TemporaryDirectory(prefix="fuzz-bundle-") as tmp:
        root = Path(tmp)
        try:
            if mode == 1:
                b.Manifest.parse(data[1:])
            else:
                path = root / "x.bundle"
                path.write_bytes(data[1:])
                b.read_manifest(path)
        except BedsideError as exc:
            assert exc.code in BUNDLE_CODES, exc.code
        blob = data[1:]
        if mode == 2:
            try:
                blob = _signed_bundle(data[1:])
            except (ValueError, UnicodeError):  # a member name tar cannot hold: not a bundle
                return
        slot = root / "slots" / "a"
        try:
            manifest = b.unpack(io.BytesIO(blob), slot, key)
        except BedsideError as exc:
            assert exc.code in BUNDLE_CODES, exc.code
            assert not slot.exists() and not slot.with_name("a.new").exists()
            assert {p.name for p in root.iterdir()} <= {"x.bundle", "slots"}
            return
        listed = {f.path for f in manifest.files} | {b.MANIFEST_NAME}
        written = {p.relative_to(slot).as_posix() for p in slot.rglob("*") if p.is_file()}
        assert written == listed, (written, listed)
        assert {p.name for p in root.iterdir()} <= {"x.bundle", "slots"}


# --- replay files (edge.readers) -------------------------------------------------------------


def readers(data: bytes) -> None:
    """read_bytes for every format (the first byte picks the file extension): a Recording or
    a RecordingError (E201-E219), nothing else."""
    from edge.readers import SUFFIXES, RecordingError, read_bytes

    if not data:
        return
    suffixes = [s for s in SUFFIXES if s not in (".hea", ".dat")] + [""]
    name = "rec" + suffixes[data[0] % len(suffixes)]
    try:
        rec = read_bytes(data[1:], name)
    except RecordingError as exc:
        assert exc.code in {f"E2{k:02d}" for k in range(1, 20)}, exc.code
        return
    assert rec.fs > 0 and np.all(np.isfinite(rec.fs))


# --- the config file (edge.config) -----------------------------------------------------------


def config(data: bytes) -> None:
    """load_config on any file: a checked Config, or E280-E284 naming the problem (E280 for
    run.speed and run.duration, which share the command line's parsers and code)."""
    from edge.config import Config, load_config

    fd, name = tempfile.mkstemp(prefix="fuzz-", suffix=".toml")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            assert isinstance(load_config(name), Config)
        except BedsideError as exc:
            assert exc.code in ("E280", "E281", "E282", "E283", "E284"), exc.code
    finally:
        os.unlink(name)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sensor_frames": sensor_frames,
    "link_frames": link_frames,
    "agent_handshake": agent_handshake,
    "log_pages": log_pages,
    "bundle": bundle,
    "readers": readers,
    "config": config,
}
