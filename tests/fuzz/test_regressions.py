"""Regression tests for what fuzzing found (see docs/reliability.md, "Fuzzing").

Deeply nested JSON or TOML made the parsers raise RecursionError instead of their error:
a rogue host could stop the maintenance agent with one small frame (the agent's read loop
does not expect it), a damaged log page crashed the host, and a config file crashed the
unit's start-up with a traceback instead of E282.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import pytest

from edge import log_pages
from edge.config import load_config
from edge.errors import BedsideError
from edge.link.frame import (
    _CRC,
    _PREFIX,
    Frame,
    FrameDecoder,
    FrameError,
    Kind,
    decode_body,
    encode_frame,
)
from edge.readers import RecordingError, read_bytes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the fuzz targets, as test_fuzz_targets.py imports them
from targets import readers  # noqa: E402

FINDINGS = HERE / "findings"
DEPTH = 5000  # far beyond Python's recursion limit, yet a small frame


def _link_body(header: bytes) -> bytes:
    body = _PREFIX.pack(int(Kind.REQUEST), 0, 1, len(header)) + header
    return body + _CRC.pack(zlib.crc32(body))


def test_link_frame_with_a_deeply_nested_header_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="not JSON"):
        decode_body(_link_body(b"[" * DEPTH))


def test_link_decoder_survives_a_deeply_nested_header_and_decodes_the_next_frame() -> None:
    from cobs import cobs

    good = Frame(Kind.REQUEST, 2, {"cmd": "ping"})
    wire = cobs.encode(_link_body(b"{" + b'"a":[' * DEPTH)) + b"\x00" + encode_frame(good)
    items = list(FrameDecoder(1 << 20).feed(wire))
    assert isinstance(items[0], FrameError)
    assert items[1] == good


@pytest.mark.parametrize("where", ["header", "text column"])
def test_log_page_with_deep_nesting_is_e362(where: str) -> None:
    columns = log_pages.EVENT_COLUMNS
    if where == "header":
        inside = b"[" * DEPTH
        raw = struct.pack(">I", len(inside)) + inside
    else:
        page = zlib.decompress(log_pages.encode_page(columns, [(1, 1, 0.0, "a", "b")]))
        (size,) = struct.unpack_from(">I", page)
        header = log_pages.json.loads(page[4 : 4 + size])
        header["columns"][3][2] = DEPTH  # the "kind" text column: nesting instead of text
        head = log_pages.json.dumps(header).encode()
        body = page[4 + size :]
        # int, int, real: 8 bytes each; then the damaged "kind" block, then "detail"
        detail = body[24 + len(b'["a"]') :]
        raw = struct.pack(">I", len(head)) + head + body[:24] + b"[" * DEPTH + detail
    with pytest.raises(BedsideError) as info:
        log_pages.decode_page(columns, zlib.compress(raw))
    assert info.value.code == "E362"


def test_config_with_deep_nesting_is_e282(tmp_path) -> None:
    path = tmp_path / "bedside.toml"
    path.write_text("[run]\nsource = " + "[" * DEPTH + "\n", encoding="utf-8")
    with pytest.raises(BedsideError) as info:
        load_config(path)
    assert info.value.code == "E282"
    assert str(info.value).count("\n") == 0 and " — " in str(info.value)


@pytest.mark.parametrize(
    ("finding", "name", "code"),
    [
        # A damaged .npz whose zip64 record names zip version 14.7: zipfile raised
        # NotImplementedError out of read_bytes; now E205 (unsupported).
        ("npz_zip64_version", "rec.npz", "E205"),
        # descr ',f4' in a .npy header: numpy parses comma dtype strings with ast and
        # raised SyntaxError out of read_bytes; now E204 (damaged).
        ("npy_comma_descr", "rec.npy", "E204"),
    ],
)
def test_a_damaged_recording_is_a_recording_error(finding: str, name: str, code: str) -> None:
    data = (FINDINGS / "readers" / finding).read_bytes()
    with pytest.raises(RecordingError) as info:
        read_bytes(data[1:], name)  # the first byte picks the file extension
    assert info.value.code == code


def test_deeply_nested_bundle_manifest_is_not_a_bundle() -> None:
    """Manifest.parse let RecursionError out of json.loads; host_tools/flash.py parses a
    bundle's manifest before any signature check, so a crafted file gave a traceback."""
    from edge.errors import BedsideError
    from edge.maint.bundle import Manifest

    with pytest.raises(BedsideError) as info:
        Manifest.parse(b"[" * 100_000)
    assert info.value.code == "E340"


def test_mat_v4_text_with_no_columns_and_a_huge_row_count_is_quick() -> None:
    """A 142-byte MAT v4 file: a text matrix of 0 columns and ~2**31 rows made the reader
    build (and join) that many empty rows: over 30 s and gigabytes. Now no text, at once."""
    readers((FINDINGS / "readers" / "mat_v4_empty_text").read_bytes())
