"""The sealed session (link protocol 2) against a device in line: it flips bits past the
CRC, replays, injects plaintext, swaps the login's session keys, or just listens. Each
attack is refused, and the session keeps working or fails with its code. The seals
themselves are checked against the primitives (HKDF by hand, ChaCha20-Poly1305 directly).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import threading
import time
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st
from inline import InlineProxy, rewrite

from edge.errors import BedsideError
from edge.link import Client
from edge.link.auth import add_authorized, challenge_message, raw_public, unit_message
from edge.link.frame import (
    Channel,
    Frame,
    FrameDecoder,
    FrameError,
    Kind,
    Sealed,
    decode_body,
    encode_frame,
    encode_payload,
)
from edge.link.session import KeyExchange, SealError, SessionCipher, session_keys
from edge.maint.agent import Agent
from host_tools.keys import KnownUnits
from host_tools.logs import pull

# Where a bit is flipped in a sealed body: head fields (associated data) and the box.
SPOTS = {"seq": 5, "counter": 13, "box": 20, "tag": -3}


@pytest.fixture
def inline_proxy():
    proxies: list[InlineProxy] = []

    def make(url: str) -> InlineProxy:
        proxies.append(InlineProxy(url))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


def counting(agent) -> list[int]:
    """Add ``test.count`` to ``agent``: each run appends to the returned list."""
    runs: list[int] = []

    @agent.command("test.count")
    def count(args, data):
        runs.append(1)
        return {"run": len(runs)}, b"vitals hr=61.25 rr=14.5"

    return runs


def parse(wire: bytes) -> Frame | Sealed | FrameError:
    """What a receiver decodes from one frame's wire bytes."""
    return next(iter(FrameDecoder(1 << 20).feed(wire)))


def is_sealed(wire: bytes, kind: Kind) -> bool:
    item = parse(wire)
    return isinstance(item, Sealed) and item.kind == kind


def once(predicate, change):
    """A tamper that applies ``change(wire) -> [wires]`` to the first frame ``predicate``
    picks, and forwards every other frame as it is."""
    done = threading.Event()

    def tamper(direction: str, wire: bytes) -> list[bytes]:
        if not done.is_set() and predicate(direction, wire):
            done.set()
            return change(wire)
        return [wire]

    tamper.done = done
    return tamper


def flip(at: int):
    def change(body: bytearray) -> None:
        body[at] ^= 0x10

    return change


# --- the seals, in-process ----------------------------------------------------------------


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out: the reference the session's HKDF must match."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
    return out[:length]


def pair() -> tuple[SessionCipher, SessionCipher]:
    """A host's and a unit's session from one key exchange over a made-up transcript."""
    host, unit = KeyExchange(), KeyExchange()
    transcript = b"transcript" + host.public + unit.public
    return (
        host.cipher(unit.public, transcript, role="host", code="E311"),
        unit.cipher(host.public, transcript, role="unit", code="E310"),
    )


def test_key_schedule_and_seal_match_the_primitives() -> None:
    host, unit = KeyExchange(), KeyExchange()
    transcript = b"any transcript"
    shared = host._private.exchange(unit._private.public_key())
    okm = hkdf_sha256(
        shared, hashlib.sha256(transcript).digest(), b"bedside-link-v2 session keys", 64
    )
    assert session_keys(shared, transcript) == (okm[:32], okm[32:])
    # A host's frame, opened with nothing but ChaCha20-Poly1305, the host-to-unit key,
    # nonce = direction 1 + counter, and the 14-byte head as associated data.
    session = host.cipher(unit.public, transcript, role="host", code="E311")
    frame = Frame(Kind.REQUEST, 77, {"cmd": "ping", "args": {}}, b"payload")
    for counter in range(3):
        sealed = decode_body(bytes(parse_body(session.seal(frame))))
        assert isinstance(sealed, Sealed) and sealed.counter == counter
        assert sealed.head == struct.pack(">BBIQ", 0x81, 0, 77, counter)
        nonce = struct.pack(">IQ", 1, counter)
        inside = ChaCha20Poly1305(okm[:32]).decrypt(nonce, sealed.box, sealed.head)
        assert inside == encode_payload(frame)


def parse_body(wire: bytes) -> bytes:
    from cobs import cobs

    return cobs.decode(wire[:-1])


frames = st.builds(
    Frame,
    kind=st.sampled_from(Kind),
    seq=st.integers(0, 2**32 - 1),
    header=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
    data=st.binary(max_size=600),
    channel=st.sampled_from(Channel),
)


@given(st.lists(frames, min_size=1, max_size=6), st.data())
@settings(max_examples=60, deadline=None)
def test_sealed_frames_round_trip_and_any_flipped_bit_is_refused(sent, data) -> None:
    host, unit = pair()
    wires = [host.seal(f) for f in sent]
    # Damage one frame past its CRC: it never opens, and the frames after it still do.
    victim = data.draw(st.integers(0, len(wires) - 1))
    body = parse_body(wires[victim])
    bit = data.draw(st.integers(0, 8 * (len(body) - 4) - 1))
    damaged = rewrite(wires[victim], flip_bit(bit))
    item = parse(damaged)
    if isinstance(item, Sealed):
        with pytest.raises(SealError):
            unit.open(item)
    else:  # the flag bit itself: a plain or broken frame, refused after login anyway
        assert isinstance(item, Frame | FrameError)
    got = [unit.open(parse(w)) for i, w in enumerate(wires) if i != victim]
    assert got == [f for i, f in enumerate(sent) if i != victim]


def flip_bit(bit: int):
    def change(body: bytearray) -> None:
        body[bit // 8] ^= 1 << (bit % 8)

    return change


def test_replayed_and_reordered_counters_are_refused() -> None:
    host, unit = pair()
    a, b, c = (host.seal(Frame(Kind.REQUEST, i, {"n": i})) for i in range(3))
    assert unit.open(parse(b)).seq == 1  # a frame lost in between is fine
    with pytest.raises(SealError, match="replayed or out of order"):
        unit.open(parse(a))  # older than one already opened
    with pytest.raises(SealError):
        unit.open(parse(b))  # the same again
    assert unit.open(parse(c)).seq == 2
    # Another session's frame does not open: each login has its own keys.
    other_host, _ = pair()
    with pytest.raises(SealError):
        unit.open(parse(other_host.seal(Frame(Kind.REQUEST, 9, {}))))


# --- the in-line device, against a real agent ------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "spot"),
    [("up", "box"), ("up", "tag"), ("down", "box"), ("down", "seq"), ("down", "counter")],
)
def test_a_bit_flipped_past_the_crc_is_refused_and_the_call_retried(
    local_paired, inline_proxy, direction, spot
) -> None:
    agent, key = local_paired
    runs = counting(agent)
    proxy = inline_proxy(agent.url)
    kind = Kind.REQUEST if direction == "up" else Kind.REPLY
    with Client.open(proxy.url, timeout_s=0.3, retries=4) as client:
        client.authenticate(key)
        proxy.tamper = once(
            lambda d, w: d == direction and is_sealed(w, kind),
            lambda w: [rewrite(w, flip(SPOTS[spot]))],
        )
        assert client.call("test.count")[0] == {"run": 1}
        assert proxy.tamper.done.is_set()
        assert client.call("test.count")[0] == {"run": 2}  # the session keeps working
    assert runs == [1, 1]  # the damaged try never ran; the retry ran once
    refused = agent.stats["refused"] if direction == "up" else client.stats["refused"]
    assert refused == 1 and client.stats["bad_frames"] == 0  # the CRC was right: the seal
    assert client.stats["resent"] >= 1


def test_a_recorded_frame_replayed_is_refused_in_its_session_and_the_next(
    local_paired, inline_proxy
) -> None:
    agent, key = local_paired
    runs = counting(agent)
    proxy = inline_proxy(agent.url)
    with Client.open(proxy.url, timeout_s=0.5, retries=4) as client:
        client.authenticate(key)
        client.call("test.count")
        request = next(w for w in frames_in(proxy, "up") if is_sealed(w, Kind.REQUEST))
        reply = [w for w in frames_in(proxy, "down") if is_sealed(w, Kind.REPLY)][-1]
        proxy.send("up", request)  # the unit must not run it again
        time.sleep(0.2)
        assert runs == [1] and agent.stats["refused"] == 1
        # The recorded reply, pushed at the host while it waits for another call's reply.
        proxy.tamper = once(
            lambda d, w: d == "down" and is_sealed(w, Kind.REPLY), lambda w: [reply, w]
        )
        assert client.call("test.count")[0] == {"run": 2}
        assert client.stats["refused"] == 1
        # A cut: the client reconnects with new session keys; the old frame is refused.
        proxy.cut()
        assert client.call("test.count")[0] == {"run": 3}
        assert client.stats["reconnects"] == 1
        proxy.send("up", request)
        time.sleep(0.2)
        assert client.call("test.count")[0] == {"run": 4}
    assert runs == [1] * 4 and agent.stats["refused"] == 2


def sessions(agent: Agent) -> list:
    """The sessions of the agent's connections now (one per peer)."""
    with agent._lock:
        return [connection.session for connection in agent._connections]


def frames_in(proxy: InlineProxy, direction: str) -> list[bytes]:
    return [f + b"\x00" for f in bytes(proxy.captured[direction]).split(b"\x00") if f]


def test_plaintext_injected_after_login_is_refused(local_paired, inline_proxy) -> None:
    agent, key = local_paired
    runs = counting(agent)
    proxy = inline_proxy(agent.url)
    with Client.open(proxy.url, timeout_s=0.5, retries=4) as client:
        client.authenticate(key)
        # A command in the clear, and a challenge (a new nonce would be a new login).
        for seq, cmd in ((999, "test.count"), (1000, "auth.challenge")):
            args = {"ephemeral": base64.b64encode(bytes(32)).decode()}
            proxy.send("up", encode_frame(Frame(Kind.REQUEST, seq, {"cmd": cmd, "args": args})))
        time.sleep(0.2)
        assert runs == [] and agent.stats["refused"] == 2
        assert [session.nonce for session in sessions(agent)] == [None]

        # A forged reply in the clear, with the seq of the host's next request.
        def forge(wire: bytes) -> list[bytes]:
            fake = Frame(Kind.REPLY, parse(wire).seq, {"run": 999})
            proxy.send("down", encode_frame(fake))
            return [wire]

        proxy.tamper = once(lambda d, w: d == "up" and is_sealed(w, Kind.REQUEST), forge)
        assert client.call("test.count")[0] == {"run": 1}  # the genuine one
        assert client.stats["refused"] == 1
    assert runs == [1]


@pytest.mark.parametrize("whose", ["host", "unit"])
def test_a_swapped_session_key_fails_the_login(local_paired, inline_proxy, whose) -> None:
    agent, key = local_paired
    proxy = inline_proxy(agent.url)
    attacker = base64.b64encode(KeyExchange().public).decode()
    # The challenge and its answer cross in the clear: the device in line rewrites the
    # host's session key in the request, or the unit's in the reply, with its own.
    direction, kind = ("up", Kind.REQUEST) if whose == "host" else ("down", Kind.REPLY)

    def swap(wire: bytes) -> list[bytes]:
        frame = parse(wire)
        header = json.loads(json.dumps(frame.header))
        (header["args"] if whose == "host" else header)["ephemeral"] = attacker
        return [encode_frame(Frame(frame.kind, frame.seq, header, frame.data))]

    def is_challenge(d: str, wire: bytes) -> bool:
        item = parse(wire)
        if d != direction or not isinstance(item, Frame) or item.kind != kind:
            return False
        return "ephemeral" in item.header.get("args", item.header)

    proxy.tamper = once(is_challenge, swap)
    with Client.open(proxy.url, timeout_s=0.5, retries=2) as client:
        with pytest.raises(BedsideError) as info:
            client.authenticate(key)
        # The unit's signature covers both session keys: the host stops before it signs.
        assert info.value.code == "E313" and "\n" not in str(info.value)
        assert proxy.tamper.done.is_set()
        assert agent.authenticated_host is None and not client.sealed
        with pytest.raises(BedsideError) as info:
            client.call("ping")
        assert info.value.code == "E320"
    assert not [w for w in frames_in(proxy, "up") if b"auth.response" in w]


def test_the_unit_refuses_a_login_signed_over_a_swapped_key(local_paired):
    # Past the host's check (a host that skipped it), the unit's own: the host's signature
    # covers the session keys it saw, and the unit refuses it (E321) when one was swapped.
    agent, key = local_paired
    with Client.open(agent.url) as client:
        exchange, attacker = KeyExchange(), KeyExchange()
        ours = {"ephemeral": base64.b64encode(attacker.public).decode()}  # swapped in line
        challenge, _ = client.call("auth.challenge", ours)
        theirs = base64.b64decode(challenge["ephemeral"])
        message = challenge_message(
            bytes.fromhex(challenge["nonce"]),
            challenge["device_id"],
            key.public_raw,
            exchange.public,  # what the host sent
            theirs,
        )
        signed = {
            "public_key": base64.b64encode(key.public_raw).decode(),
            "signature": base64.b64encode(key.sign(message)).decode(),
        }
        with pytest.raises(BedsideError) as info:
            client.call("auth.response", signed)
        assert info.value.code == "E321"
    assert agent.authenticated_host is None


def test_a_device_playing_the_unit_with_its_own_key_is_e328(local_paired, inline_proxy, tmp_path):
    # The device answers the challenge itself: its own session key, signed with its own
    # key. The signature checks, but the laptop knows the unit by another key (pinned at
    # its first login): E328, and nothing of the host's is signed.
    agent, key = local_paired
    known = KnownUnits(tmp_path / "laptop-keys")
    with Client.open(agent.url) as client:
        client.authenticate(key, unit_keys=known)  # the first login pins the key
    assert known.pinned()[agent.identity["device_id"]].raw == agent.unit_key
    impostor, exchange = Ed25519PrivateKey.generate(), KeyExchange()

    def play_the_unit(wire: bytes) -> list[bytes]:
        frame = parse(wire)
        header = dict(frame.header)
        nonce, device_id = bytes.fromhex(header["nonce"]), header["device_id"]
        host_ephemeral = base64.b64decode(requests[-1].header["args"]["ephemeral"])
        signed = unit_message(nonce, device_id, host_ephemeral, exchange.public)
        header["ephemeral"] = base64.b64encode(exchange.public).decode()
        header["unit_key"] = base64.b64encode(raw_public(impostor)).decode()
        header["unit_signature"] = base64.b64encode(impostor.sign(signed)).decode()
        return [encode_frame(Frame(frame.kind, frame.seq, header))]

    requests: list[Frame] = []

    def tamper(direction: str, wire: bytes) -> list[bytes]:
        item = parse(wire)
        if direction == "up" and isinstance(item, Frame) and "args" in item.header:
            requests.append(item)
        if direction == "down" and isinstance(item, Frame) and "unit_key" in item.header:
            return play_the_unit(wire)
        return [wire]

    proxy = inline_proxy(agent.url)
    proxy.tamper = tamper
    with Client.open(proxy.url, timeout_s=0.5, retries=2) as client:
        with pytest.raises(BedsideError) as info:
            client.authenticate(key, unit_keys=known)
        assert info.value.code == "E328" and "known_units" in str(info.value)
    assert not [w for w in frames_in(proxy, "up") if b"auth.response" in w]
    assert known.pinned()[agent.identity["device_id"]].raw == agent.unit_key  # unchanged


def test_a_forged_plain_login_answer_is_e311(local_paired, inline_proxy, tmp_path) -> None:
    # The unit refuses a stranger's key; the device in line turns the refusal into a
    # plain "accepted". The host expects the answer sealed with the new keys: E311.
    agent, _ = local_paired
    from host_tools.keys import HostKey

    stranger = HostKey.generate(tmp_path / "stranger", name="stranger")
    proxy = inline_proxy(agent.url)

    def accept(wire: bytes) -> list[bytes]:
        refusal = parse(wire)
        return [encode_frame(Frame(Kind.REPLY, refusal.seq, {"fingerprint": "x"}))]

    def is_refusal(d: str, wire: bytes) -> bool:
        item = parse(wire)
        return d == "down" and isinstance(item, Frame) and item.header.get("code") == "E321"

    proxy.tamper = once(is_refusal, accept)
    with Client.open(proxy.url, timeout_s=0.5, retries=2) as client:
        with pytest.raises(BedsideError) as info:
            client.authenticate(stranger)
        assert info.value.code == "E311" and "\n" not in str(info.value)
        assert not client.authenticated
        assert [session.host for session in sessions(agent)] == [None]


def test_a_lost_login_answer_is_sent_again_sealed(local_paired, inline_proxy) -> None:
    agent, key = local_paired
    runs = counting(agent)
    proxy = inline_proxy(agent.url)
    # The first sealed frame from the unit is the login's answer: lose it. The host sends
    # the login again (in the clear, as before); the unit answers it from its reply cache.
    proxy.tamper = once(lambda d, w: d == "down" and is_sealed(w, Kind.REPLY), lambda w: [])
    with Client.open(proxy.url, timeout_s=0.3, retries=3) as client:
        client.authenticate(key)
        assert proxy.tamper.done.is_set() and client.sealed
        assert client.stats["resent"] == 1
        assert client.call("test.count")[0] == {"run": 1}
        # Logging in again inside the sealed session starts new keys; still one run each.
        client.authorize(key, "again")
        assert client.call("test.count")[0] == {"run": 2}
    assert runs == [1, 1] and agent.stats["refused"] == 0


def test_protocol_1_hosts_are_refused_with_a_clear_code(local_agent) -> None:
    with Client.open(local_agent.url) as client:
        hello = Frame(Kind.REQUEST, 5, {"cmd": "hello", "args": {"protocol": [1]}})
        with pytest.raises(BedsideError) as info:
            client._exchange(hello, 2.0)
        assert info.value.code == "E303" and "protocol 1 is refused" in str(info.value)
        assert "update bedside-host" in str(info.value)
        # A login the protocol 1 way (no session key) on a protocol 2 link.
        with pytest.raises(BedsideError) as info:
            client.call("auth.challenge")
        assert info.value.code == "E310" and "update bedside-host" in str(info.value)


def inflate(blob: bytes) -> bytes:
    try:
        return zlib.decompress(blob)
    except zlib.error:
        return b""


def readable(stream: bytes) -> bytes:
    """Everything an observer who knows the frame format reads in ``stream``: each frame's
    header and data, and its data (or sealed box) inflated where it is zlib."""
    out = []
    for item in FrameDecoder(1 << 20).feed(stream):
        if isinstance(item, FrameError):
            continue
        blob = item.data if isinstance(item, Frame) else item.box
        if isinstance(item, Frame):
            out.append(json.dumps(item.header).encode())
        out += [blob, inflate(blob)]
    return b"\n".join(out)


def test_a_passive_observer_reads_no_vitals_or_logs(paired_unit, inline_proxy, tmp_path):
    from logs_fixtures import record, write_log

    unit, key = paired_unit
    record(unit.state, 400, sessions=1)
    write_log(unit.state, "runtime.log", 300)
    secret_line = b"INFO line 123\n"
    proxy = inline_proxy(unit.url)
    pages: list[bytes] = []
    with Client.open(proxy.url) as client:
        client.authenticate(key)
        call = client.call

        def recording(*args, **kwargs):
            header, data = call(*args, **kwargs)
            pages.append(data)
            return header, data

        client.call = recording
        result = pull(client, tmp_path / "archive", page_bytes=4096)
    assert result.epochs == 400
    # The observer's method finds the values in frames sent in the clear: a log line, and
    # the recording's name in the sessions page...
    known = [secret_line, b"P017-night0"]
    for value in known:
        page = next(p for p in pages if value in inflate(p))
        assert value in readable(encode_frame(Frame(Kind.REPLY, 1, {}, page)))
    # ...and in what crossed before login (identification is public)...
    stream = bytes(proxy.captured["up"] + proxy.captured["down"])
    assert unit.device_id.encode() in readable(stream)
    # ...but nothing of the pull: no log line or recording name, no page, no page digest.
    seen = readable(stream)
    assert not [value for value in known if value in seen]
    for page in (p for p in pages if len(p) >= 16):
        assert page not in seen
        assert hashlib.sha256(page).hexdigest().encode() not in seen
    sealed = [parse(w) for w in frames_in(proxy, "down")]
    assert sum(isinstance(f, Sealed) for f in sealed) >= len(pages)


def test_a_unit_restarted_under_a_serial_link_fails_cleanly_then_logs_in_again(
    tmp_path, host_key, tty_pair
) -> None:
    # A serial line says nothing when the agent restarts: the laptop's sealed frames reach
    # a unit without a session, which refuses them. Known limit: the call fails (E301), and
    # the next connection logs in again.
    unit_path, host_path = tty_pair

    def start() -> tuple[Agent, threading.Thread]:
        agent = Agent(unit_path, state_dir=tmp_path / "unit", modules=())
        add_authorized(agent.keys_dir / "authorized_hosts", host_key.public)
        thread = threading.Thread(target=agent.serve_forever, daemon=True)
        thread.start()
        return agent, thread

    agent, thread = start()
    with Client.open(host_path, timeout_s=0.3, retries=1) as client:
        client.authenticate(host_key)
        assert client.call("ping", {"n": 1})[0]["args"] == {"n": 1}
        agent.stop()
        thread.join(timeout=5)
        agent, thread = start()
        try:
            with pytest.raises(BedsideError) as info:
                client.call("ping", {"n": 2})
            assert info.value.code == "E301" and agent.stats["refused"] == 2
            with Client.open(host_path, timeout_s=0.5) as again:
                again.authenticate(host_key)
                assert again.call("ping", {"n": 3})[0]["args"] == {"n": 3}
        finally:
            agent.stop()
            thread.join(timeout=5)
