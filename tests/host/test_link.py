"""The link: frames (round trips, fuzz, damage), and request/response against a real agent."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import BedsideError, fail
from edge.link import PROTOCOL_VERSION, Client, LinkError, codes, open_port
from edge.link.auth import add_authorized
from edge.link.commands import PUBLIC, Command
from edge.link.frame import (
    FRAME_OVERHEAD,
    Channel,
    Frame,
    FrameDecoder,
    FrameError,
    Kind,
    Sealed,
    decode_body,
    encode_frame,
)
from edge.maint.agent import Agent

# --- frames ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
frames = st.builds(
    Frame,
    kind=st.sampled_from(Kind),
    seq=st.integers(0, 2**32 - 1),
    header=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    data=st.binary(max_size=2000),
    channel=st.sampled_from(Channel),
)


def feed_in_pieces(decoder: FrameDecoder, wire: bytes, cuts: list[int]) -> list:
    """Feed ``wire`` split at ``cuts``; return everything the decoder yields."""
    out, start = [], 0
    for cut in sorted(set(cuts)) + [len(wire)]:
        out += list(decoder.feed(wire[start:cut]))
        start = cut
    return out


@given(st.lists(frames, min_size=1, max_size=5), st.lists(st.integers(0, 20000), max_size=30))
@settings(max_examples=200, deadline=None)
def test_frames_round_trip_in_any_chunking(sent: list[Frame], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(f) for f in sent)
    got = feed_in_pieces(FrameDecoder(8192), wire, [c % (len(wire) + 1) for c in cuts])
    assert got == sent


def test_frame_layout_golden() -> None:
    # A frame pinned byte for byte: the layout is a contract with units in the field.
    # body: kind 01, channel 00, seq 01020304, hlen 000b, '{"cmd":"x"}', data 00 ff, CRC-32;
    # then COBS: each zero replaced by the distance to the next one (02, 05, 0d, 06).
    wire = encode_frame(Frame(Kind.REQUEST, 0x01020304, {"cmd": "x"}, b"\x00\xff"))
    body = bytes.fromhex("01000102030400 0b") + b'{"cmd":"x"}' + b"\x00\xff"
    assert zlib.crc32(body) == 0xCE7A4B0E
    expected = "02 01 05 01020304 0d 0b 7b22636d64223a2278227d 06 ff ce7a4b0e 00"
    assert wire == bytes.fromhex(expected)


@given(st.binary(max_size=5000))
@settings(max_examples=300, deadline=None)
def test_decoder_survives_random_bytes(noise: bytes) -> None:
    decoder = FrameDecoder(1024)
    for item in decoder.feed(noise):
        assert isinstance(item, Frame | Sealed | FrameError)
    assert decoder.buffered <= 1024 + 1024 // 254 + 2  # bounded, whatever arrives


@given(frames, st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_damaged_frame_is_rejected_and_the_next_one_decodes(frame: Frame, data) -> None:
    wire = encode_frame(frame)
    how = data.draw(st.sampled_from(["flip", "truncate"]))
    if how == "flip":
        at = data.draw(st.integers(0, len(wire) - 2))  # not the delimiter
        bit = data.draw(st.integers(0, 7))
        damaged = bytearray(wire)
        damaged[at] ^= 1 << bit
        damaged = bytes(damaged)
    else:
        damaged = wire[: data.draw(st.integers(0, len(wire) - 2))] + b"\x00"
    good = Frame(Kind.REPLY, 7, {"ok": True}, b"next")
    items = list(FrameDecoder(8192).feed(damaged + encode_frame(good)))
    # The damage never yields a frame (CRC-32); the stream recovers at the next delimiter.
    assert items[-1] == good
    assert all(isinstance(item, FrameError) for item in items[:-1])


def test_decode_body_errors_have_the_frame_code() -> None:
    for body in (b"", b"\x01" * (FRAME_OVERHEAD - 1), b"\x01" * 40):
        with pytest.raises(FrameError) as info:
            decode_body(body)
        assert info.value.code == "E305"


def test_oversized_run_is_dropped_and_resynchronised() -> None:
    decoder = FrameDecoder(1024)
    small = Frame(Kind.REPLY, 1, {}, b"ok")
    big = encode_frame(Frame(Kind.REPLY, 2, {}, bytes(range(256)) * 20))
    items = list(decoder.feed(big + encode_frame(small)))
    assert isinstance(items[0], FrameError) and items[1] == small


def test_frames_cross_a_pyserial_loop_port() -> None:
    # The same code path as a cable: pyserial's loop:// echoes what is written.
    port = open_port("loop://", timeout=0.01)
    sent = [Frame(Kind.LOG, i, {"msg": f"line {i}"}, channel=Channel.LOGS) for i in range(3)]
    for frame in sent:
        port.write(encode_frame(frame))
    decoder, got = FrameDecoder(), []
    while len(got) < len(sent):
        chunk = port.read(4096)
        assert chunk, "loop:// returned nothing"
        got += list(decoder.feed(chunk))
    port.close()
    assert got == sent


# --- request / response against an agent -------------------------------------------------------


def test_hello_negotiates_version_and_frame_size(local_agent) -> None:
    with Client.open(local_agent.url) as client:
        assert client.protocol == PROTOCOL_VERSION == 2
        assert client.max_frame == local_agent.max_frame
        assert client.max_data == client.max_frame - FRAME_OVERHEAD - 1024
        assert client.device_id == local_agent.identity["device_id"]


def test_identify_needs_no_authentication(local_agent) -> None:
    with Client.open(local_agent.url) as client:
        info = client.identify()
    assert info["device_id"].startswith("bcg-")
    assert info["protocol"] == 2 and info["authenticated"] is False
    assert {"hardware", "software_version", "max_frame"} <= set(info)


def test_bulk_call_round_trip_at_max_data(local_paired) -> None:
    agent, key = local_paired
    with Client.open(agent.url) as client:
        client.authenticate(key)
        payload = bytes(range(256)) * (client.max_data // 256) + b"\x00" * (client.max_data % 256)
        assert len(payload) == client.max_data
        reply, data = client.call("ping", {"echo": True, "n": 3}, payload)
        assert data == payload and reply == {"args": {"echo": True, "n": 3}, "received": len(data)}
        with pytest.raises(LinkError) as info:
            client.call("ping", {}, payload + b"x" * 2000)
        assert info.value.code == "E304"


def test_remote_error_arrives_with_its_code_and_message(local_paired) -> None:
    agent, key = local_paired

    @agent.command("test.refuse")
    def refuse(args, data):
        fail("E341", "the bundle is not signed", "sign it with bedside-host bundle build")

    @agent.command("test.crash")
    def crash(args, data):
        raise ZeroDivisionError("secret detail")

    with Client.open(agent.url) as client:
        client.authenticate(key)
        with pytest.raises(BedsideError) as info:
            client.call("test.refuse")
        assert info.value.code == "E341"
        expected = "the bundle is not signed — sign it with bedside-host bundle build"
        assert str(info.value) == expected
        with pytest.raises(BedsideError) as info:
            client.call("test.crash")
        assert info.value.code == "E307" and "secret detail" not in str(info.value)
        with pytest.raises(BedsideError) as info:
            client.call("no.such.command")
        assert info.value.code == "E306"
        assert client.call("ping", {"still": "fine"})[0]["args"] == {"still": "fine"}


def test_repeated_seq_is_answered_from_the_cache_not_run_twice(local_paired) -> None:
    agent, key = local_paired
    runs = []

    @agent.command("test.count")
    def count(args, data):
        runs.append(1)
        return {"run": len(runs)}, b""

    with Client.open(agent.url) as client:
        client.authenticate(key)
        request = Frame(Kind.REQUEST, 123456, {"cmd": "test.count", "args": {}})
        first = client._exchange(request, 2.0)
        again = client._exchange(request, 2.0)  # what a retry after a lost reply sends
        assert first.header == again.header == {"run": 1}
        assert len(runs) == 1
        assert client.call("test.count")[0] == {"run": 2}


def test_slow_handler_keeps_the_host_waiting_with_busy_frames(local_paired) -> None:
    agent, key = local_paired

    @agent.command("test.slow")
    def slow(args, data):
        time.sleep(1.3)
        return {"done": True}, b""

    with Client.open(agent.url, timeout_s=0.5, retries=0) as client:
        client.authenticate(key)
        assert client.call("test.slow")[0] == {"done": True}


def test_log_stream_shares_the_link_with_commands(local_paired) -> None:
    agent, key = local_paired

    @agent.command("test.work")
    def work(args, data):
        for i in range(3):
            logging.getLogger("edge.test").info("step %d", i)
        return {"worked": True}, b""

    with Client.open(agent.url) as client:
        client.authenticate(key)
        client.subscribe_logs("INFO")
        assert client.call("test.work")[0] == {"worked": True}
        client.pump(0.05)
    steps = [r["msg"] for r in client.logs if r["logger"] == "edge.test"]
    assert steps == ["step 0", "step 1", "step 2"]
    assert all(r["level"] == "INFO" for r in client.logs if r["logger"] == "edge.test")


def test_no_log_stream_before_authentication(local_agent) -> None:
    with Client.open(local_agent.url) as client:
        with pytest.raises(BedsideError) as info:
            client.subscribe_logs()
        assert info.value.code == "E320"
        logging.getLogger("edge.test").warning("not for strangers")
        client.pump(0.1)
        assert not client.logs


def test_trace_prints_a_hexdump_of_every_frame(local_agent) -> None:
    out = io.StringIO()
    with Client.open(local_agent.url, trace=out) as client:
        client.identify()
    text = out.getvalue()
    assert text.count("> REQUEST") == 2 and text.count("< REPLY") == 2  # hello, identify
    assert "identify" in text and "  00000000  " in text


def test_version_mismatch_is_refused_clearly(local_agent) -> None:
    with Client.open(local_agent.url) as client:
        hello = Frame(Kind.REQUEST, 99, {"cmd": "hello", "args": {"protocol": [99]}})
        with pytest.raises(BedsideError) as info:
            client._exchange(hello, 2.0)
    assert info.value.code == "E303"


def test_silent_unit_times_out_after_the_retries() -> None:
    server = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    with pytest.raises(LinkError) as info:
        Client.open(url, timeout_s=0.2, retries=2)
    assert info.value.code == "E301" and "3 tries" in str(info.value)
    took = time.monotonic() - start
    print(f"3 tries of 0.2 s: {took:.2f} s")
    assert took < 15, took  # generous: it gives up, and not after minutes
    server.close()


def test_port_that_cannot_open_is_e300() -> None:
    with pytest.raises(LinkError) as info:
        Client.open("/dev/does-not-exist-bedside")
    assert info.value.code == "E300" and "\n" not in str(info.value)


def test_every_link_code_is_in_errors_md_with_its_table_row() -> None:
    # One table of the link's codes (edge.link.codes); docs/errors.md explains each one.
    docs = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text("utf-8")
    rows = set(re.findall(r"^\| (E3[0-3][0-9]) \|", docs, re.MULTILINE))
    assert set(codes.MEANINGS) == rows
    names = {v for k, v in vars(codes).items() if k.isupper() and k != "MEANINGS"}
    assert names == set(codes.MEANINGS)


def test_the_agent_serves_the_command_table(tmp_path) -> None:
    # Every command of edge.link.commands is served by the agent with its handler modules,
    # and only those of PUBLIC before authentication.
    agent = Agent("listen://127.0.0.1:0", state_dir=tmp_path / "unit")
    try:
        assert set(agent._handlers) == set(Command)
        assert {name for name, (_, auth) in agent._handlers.items() if not auth} == PUBLIC
    finally:
        agent.port.close()


def test_over_a_real_tty_device_path(tmp_path, host_key, tty_pair) -> None:
    # The agent and the host each open a device path with pyserial, as with a USB cable.
    unit_path, host_path = tty_pair
    agent = Agent(unit_path, state_dir=tmp_path / "unit", modules=())
    add_authorized(agent.keys_dir / "authorized_hosts", host_key.public)
    serving = threading.Thread(target=agent.serve_forever, daemon=True)
    serving.start()
    try:
        with Client.open(host_path, timeout_s=1.0) as client:
            client.authenticate(host_key)
            payload = os.urandom(20000)
            assert client.call("ping", {"echo": True}, payload)[1] == payload
        # A host that restarts on the same line: its hello (plain, after a sealed session)
        # starts a new session, which must log in again.
        with Client.open(host_path, timeout_s=1.0) as client:
            with pytest.raises(BedsideError) as info:
                client.call("ping")
            assert info.value.code == "E320"
            client.authenticate(host_key)
            assert client.call("ping", {"n": 2})[0]["args"] == {"n": 2}
    finally:
        agent.stop()
        serving.join(timeout=5)
