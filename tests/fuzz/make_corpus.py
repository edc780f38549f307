"""Write the seed corpora of the Python fuzz targets to tests/fuzz/corpus/<target>/.

    .venv/bin/python tests/fuzz/make_corpus.py

Seeds are small valid inputs (the fuzzer mutates them into invalid ones): real encoders
make them, so they follow the formats as the code writes them. Re-run after a format
change; the files are committed (tests/fuzz/test_corpus.py replays them in `make test`).
The C harness's seeds (corpus/dsp_c) were written once by hand-made parameters and are
kept as they are.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from edge import log_pages as lp  # noqa: E402
from edge.firmware import protocol as p  # noqa: E402
from edge.link.frame import Channel, Frame, Kind, encode_frame  # noqa: E402
from edge.link.session import SessionCipher  # noqa: E402
from edge.maint import bundle as bundles  # noqa: E402
from edge.sources.frames import encode_command  # noqa: E402


def sensor_frames() -> dict[str, bytes]:
    samples = bytes([p.T_SAMPLES]) + (7).to_bytes(2, "little") + bytes([5])
    samples += np.arange(2000, 2010, 2, dtype="<u2").tobytes()
    info = bytes([p.T_INFO, 3, 1]) + (250).to_bytes(2, "little") + bytes([10, 1, 4])
    info += bytes.fromhex("deadbeef") + b"1.2.0"
    stream = b"".join(b"\x00" + p.frame(body) for body in (samples, info, bytes([p.T_ACK, 3, 0])))
    return {
        "three_frames": b"\x00" + stream,
        "cut_stream": b"\x03\x05\x40\x11" + stream + b"\x00garbage\x00" + encode_command(0x47, 1),
        "nack": b"\x00" + p.frame(bytes([p.T_NACK, 4, p.C_RATE, p.R_BAD_ARG])),
    }


def _sealed(frames: list[Frame]) -> bytes:
    """``frames`` sealed as a host with fixed keys (a seed need not be secret)."""
    session = SessionCipher(bytes(32), bytes(range(32)), role="host")
    return b"".join(session.seal(f) for f in frames)


def link_frames() -> dict[str, bytes]:
    request = Frame(Kind.REQUEST, 1, {"cmd": "hello", "args": {"protocol": [2]}})
    reply = Frame(Kind.REPLY, 1, {"protocol": 2, "max_frame": 4096}, b"\x00\x01data")
    log = Frame(Kind.LOG, 9, {"level": "INFO", "msg": "x"}, channel=Channel.LOGS)
    wire = b"".join(encode_frame(f) for f in (request, reply, log))
    return {
        "request": b"\x00" + encode_frame(request),
        "stream": b"\x02\x10\x30" + wire,
        "sealed": b"\x01\x20" + _sealed([reply, log]),
    }


def agent_handshake() -> dict[str, bytes]:
    def seed(index: int, args: object) -> bytes:
        return bytes([index]) + json.dumps(args).encode()

    key = base64.b64encode(bytes(range(32))).decode()
    sig = base64.b64encode(bytes(64)).decode()
    hello = Frame(Kind.REQUEST, 5, {"cmd": "hello", "args": {"protocol": [2]}})
    ping = Frame(Kind.REQUEST, 6, {"cmd": "ping", "args": {}}, b"data")
    return {
        "hello": seed(0, {"protocol": [2], "max_frame": 65536}),
        "identify": seed(1, {}),
        "challenge": seed(2, {"ephemeral": key}),
        "raw_sealed": b"\x80" + encode_frame(hello) + _sealed([ping]),
        "response": seed(3, {"public_key": key, "signature": sig}),
        "authorize": seed(4, {"public_key": key, "signature": sig, "name": "laptop"}),
        "subscribe": seed(6, {"level": "DEBUG"}),
    }


def log_pages() -> dict[str, bytes]:
    epochs = [
        (1, 1, 1.7e9, 30.0, "occupied", 0.9, 61.5, 40.2, 14.0, 0.1, 31, None, None),
        (2, 1, 1.7e9 + 30, 30.0, "moving", None, None, None, None, 3.0, 0, "moving", "moving"),
    ]
    events = [(5, 1, 1.7e9, "bed_entry", "{}")]
    sessions = [(1, "sim:42", 250.0, 30.0, "0.2.0", 1.7e9, None, None, 2, 1)]
    out = {}
    for flag, (name, columns, rows) in enumerate(
        [
            ("epochs", lp.EPOCH_COLUMNS, epochs),
            ("events", lp.EVENT_COLUMNS, events),
            ("sessions", lp.SESSION_COLUMNS, sessions),
        ]
    ):
        page = lp.encode_page(columns, rows)
        out[f"{name}_page"] = bytes([flag | 4]) + page  # as sent
        out[f"{name}_inside"] = bytes([flag]) + zlib.decompress(page)  # past zlib
    return out


def bundle() -> dict[str, bytes]:
    files = {"edge/__init__.py": b"# a bundle seed\n"}
    entries = [
        bundles.FileEntry(path, len(data), hashlib.sha256(data).hexdigest(), 0o644)
        for path, data in files.items()
    ]
    raw = bundles.manifest_bytes(
        version="0.2.0",
        min_version="0.0.0",
        hardware=["sim"],
        key_fingerprint="SHA256:fuzz",
        files=entries,
        created_utc="2026-11-25T00:00:00Z",
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = [(bundles.MANIFEST_NAME, raw), (bundles.SIGNATURE_NAME, bytes(64))]
        for name, data in members + [(f"payload/{k}", v) for k, v in files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    members = b"".join(b"\n--\n" + f"payload/{k}\n".encode() + v for k, v in files.items())
    return {
        "manifest": b"\x01" + raw,
        "archive": b"\x00" + buf.getvalue(),
        "signed": b"\x02" + raw + members,  # signed by the target: reaches the payload checks
    }


def readers() -> dict[str, bytes]:
    from edge.readers import SUFFIXES

    suffixes = [s for s in SUFFIXES if s not in (".hea", ".dat")] + [""]
    x = np.round(np.sin(np.arange(60) / 5) * 100, 2)
    csv = "time,bcg\n" + "".join(f"{i * 0.004:.3f},{v}\n" for i, v in enumerate(x))
    npy = io.BytesIO()
    np.save(npy, x.astype("<f4"))
    npz = io.BytesIO()
    np.savez(npz, fs=np.int32(250), bcg=x)
    seeds = {".csv": csv.encode(), ".npy": npy.getvalue(), ".npz": npz.getvalue()}
    try:  # MAT files written by scipy (a test dependency) when present
        import scipy.io as sio

        mat = io.BytesIO()
        sio.savemat(mat, {"Fs": 250.0, "bcg": x})
        seeds[".mat"] = mat.getvalue()
    except ImportError:
        pass
    return {
        f"seed{suffix or '_sniffed'}": bytes([suffixes.index(suffix)]) + data
        for suffix, data in seeds.items()
        if suffix in suffixes
    }


def config() -> dict[str, bytes]:
    text = (HERE.parents[1] / "docs" / "beta-user.md").read_text(encoding="utf-8")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    return {
        "all_keys": block.encode(),
        "short": b'[run]\nsource = "sim:1"\nspeed = "max"\n[store]\nmax_mb = 64\n',
    }


def main() -> None:
    for target, make in [
        ("sensor_frames", sensor_frames),
        ("link_frames", link_frames),
        ("agent_handshake", agent_handshake),
        ("log_pages", log_pages),
        ("bundle", bundle),
        ("readers", readers),
        ("config", config),
    ]:
        folder = HERE / "corpus" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in make().items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(make())} seeds")


if __name__ == "__main__":
    main()
