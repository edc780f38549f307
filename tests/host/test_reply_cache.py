"""The agent's reply cache belongs to one connection and one session (issue 16, finding 7).

A request repeated with its seq is answered from the cache, not run again: on the same
connection, in the same session. A login recorded on the cable and replayed on another
connection, or after a ``hello``, must not be answered from it ("accepted"), nor any other
reply of another session.
"""

from __future__ import annotations

import socket
import time

from inline import InlineProxy

from edge.link import DEFAULT_MAX_FRAME, Client
from edge.link.codes import KEY_REFUSED, NO_CHALLENGE, NOT_AUTHENTICATED
from edge.link.commands import Command
from edge.link.frame import Frame, FrameDecoder, Kind, encode_frame


class RawPeer:
    """A host that writes frames as they are given and reads the unit's replies."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("socket://").rpartition(":")
        self._sock = socket.create_connection((host, int(port)), timeout=2)
        self._decoder = FrameDecoder(DEFAULT_MAX_FRAME)
        self._frames: list = []

    def ask(self, wire: bytes, seq: int) -> Frame:
        """Send ``wire`` (a request numbered ``seq``) and return its answer."""
        self._sock.sendall(wire)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            for frame in self._frames:
                if frame.seq == seq and frame.kind in (Kind.REPLY, Kind.ERROR):
                    self._frames.remove(frame)
                    return frame
            self._frames += self._decoder.feed(self._sock.recv(65536))
        raise AssertionError(f"no answer to request {seq}")

    def call(self, seq: int, command: str, args: dict | None = None) -> Frame:
        request = Frame(Kind.REQUEST, seq, {"cmd": command, "args": args or {}})
        return self.ask(encode_frame(request), seq)

    def close(self) -> None:
        self._sock.close()


def recorded_login(agent, key) -> tuple[dict[str, tuple[int, bytes]], dict[int, Frame]]:
    """A real login recorded on the cable: the host's plain requests by command (seq and
    wire bytes), and the unit's plain answers by seq."""
    with InlineProxy(agent.url) as proxy, Client.open(proxy.url) as client:
        client.authenticate(key)
        time.sleep(0.1)  # the last frames have crossed the proxy
    decode = FrameDecoder(DEFAULT_MAX_FRAME).feed
    requests = {}
    for wire in bytes(proxy.captured["up"]).split(b"\x00"):
        for frame in decode(wire + b"\x00"):
            if isinstance(frame, Frame):  # the handshake's frames are plain
                requests[frame.header["cmd"]] = (frame.seq, wire + b"\x00")
    answers = {f.seq: f for f in decode(bytes(proxy.captured["down"])) if isinstance(f, Frame)}
    return requests, answers


def test_a_login_replayed_on_a_new_connection_gets_no_cached_answer(local_paired) -> None:
    agent, key = local_paired
    requests, _ = recorded_login(agent, key)
    seq, login = requests[Command.AUTH_RESPONSE]
    peer = RawPeer(agent.url)
    try:
        answer = peer.ask(login, seq)
        # Refused as a replay (its challenge belongs to the other connection), not "accepted".
        assert answer.kind == Kind.ERROR and answer.header["code"] == NO_CHALLENGE
        assert peer.call(seq + 1, Command.PING).header["code"] == NOT_AUTHENTICATED
    finally:
        peer.close()


def test_a_whole_login_replayed_gets_a_new_challenge_and_is_refused(local_paired) -> None:
    agent, key = local_paired
    requests, answers = recorded_login(agent, key)
    peer = RawPeer(agent.url)
    try:
        for command in (Command.HELLO, Command.AUTH_CHALLENGE, Command.AUTH_RESPONSE):
            seq, wire = requests[command]
            answer = peer.ask(wire, seq)
            if command == Command.AUTH_CHALLENGE:  # a new nonce, not the recorded one
                assert answer.kind == Kind.REPLY
                assert answer.header["nonce"] != answers[seq].header["nonce"]
        assert answer.kind == Kind.ERROR and answer.header["code"] == KEY_REFUSED
        assert peer.call(seq + 1, Command.PING).header["code"] == NOT_AUTHENTICATED
    finally:
        peer.close()


def test_a_new_session_on_the_same_connection_starts_an_empty_cache(local_agent) -> None:
    runs = []

    @local_agent.command("test.count", auth=False)
    def count(args, data):
        runs.append(1)
        return {"run": len(runs)}, b""

    peer = RawPeer(local_agent.url)
    try:
        peer.call(1, Command.HELLO, {"protocol": [2]})
        assert peer.call(5, "test.count").header == {"run": 1}
        assert peer.call(5, "test.count").header == {"run": 1}  # a retry: from the cache
        peer.call(6, Command.HELLO, {"protocol": [2]})  # the host restarted
        assert peer.call(5, "test.count").header == {"run": 2}  # its own request, run
    finally:
        peer.close()
    assert len(runs) == 2
