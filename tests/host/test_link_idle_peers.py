"""Peers that hold the maintenance link: one that stays silent, one that never reads, and
more peers than the unit serves at once (issue 16, finding 5). Each is bounded in time, and
no host waits on another's peer.

Timeouts here are the agent's (login, send) made short, so each test takes a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.link import DEFAULT_MAX_FRAME, Client
from edge.link.auth import add_authorized
from edge.link.frame import Frame, FrameDecoder, Kind, encode_frame
from edge.maint.agent import Agent
from host_tools.cli import main

LOGIN_S = 1.0  # the agent's login timeout in these tests
SEND_S = 0.5  # its send timeout


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator:
    """Factory: an in-process agent (built-in commands) serving a local socket, with
    short timeouts; ``start_agent(max_peers=2)`` changes what it is given."""
    agents: list[tuple[Agent, threading.Thread]] = []

    def start(**options) -> Agent:
        options = {"login_timeout_s": LOGIN_S, "send_timeout_s": SEND_S, **options}
        state = tmp_path / f"agent{len(agents)}"
        agent = Agent("listen://127.0.0.1:0", state_dir=state, modules=(), **options)
        thread = threading.Thread(target=agent.serve_forever, daemon=True)
        thread.start()
        agents.append((agent, thread))
        return agent

    yield start
    for agent, thread in agents:
        agent.stop()
        thread.join(timeout=5)


def silent_peer(url: str, *, receive_buffer: int | None = None) -> socket.socket:
    """A TCP connection to ``url`` that sends nothing (and reads nothing)."""
    host, _, port = url.removeprefix("socket://").rpartition(":")
    peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connecting: it sets the window offered
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    peer.connect((host, int(port)))
    return peer


def closed_by_the_unit(peer: socket.socket, within_s: float) -> bool:
    """True when the unit ends the connection within ``within_s`` (what it sent is read
    and discarded on the way)."""
    deadline = time.monotonic() + within_s
    while (left := deadline - time.monotonic()) > 0:
        peer.settimeout(left)
        try:
            if not peer.recv(1 << 20):
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


def hello(seq: int) -> bytes:
    args = {"protocol": [2], "max_frame": DEFAULT_MAX_FRAME}
    return encode_frame(Frame(Kind.REQUEST, seq, {"cmd": "hello", "args": args}))


def test_a_silent_connection_does_not_keep_status_from_another_host(paired_unit, capsys):
    # The virtual unit as an operator runs it (bedside-host sim), with its default timeouts.
    unit, _ = paired_unit
    silent = silent_peer(unit.url)
    try:
        time.sleep(0.2)  # the unit has accepted it and waits on it
        start = time.monotonic()
        assert main(["status", "--port", unit.url, "--json"]) == 0
        took = time.monotonic() - start
        status = json.loads(capsys.readouterr().out)
        assert status["authenticated"] is True and status["device_id"] == unit.device_id
        assert took < 3, f"status took {took:.1f} s beside a silent connection"
    finally:
        silent.close()


def test_a_connection_that_does_not_log_in_in_time_is_closed(start_agent, host_key) -> None:
    agent = start_agent()
    add_authorized(agent.keys_dir / "authorized_hosts", host_key.public)
    silent = silent_peer(agent.url)
    with Client.open(agent.url, timeout_s=0.5) as client:
        client.identify()  # served at once, beside the silent peer
        client.authenticate(host_key)
        assert closed_by_the_unit(silent, LOGIN_S + 1.0)
        assert agent.stats["dropped"] == 1
        # A host that logged in is not timed out: it idled past the login timeout.
        time.sleep(LOGIN_S + 0.3)
        assert client.call("ping")[0]["received"] == 0
        assert client.stats["reconnects"] == 0
    # A peer that keeps talking without logging in is closed all the same.
    talker = silent_peer(agent.url)
    with contextlib.suppress(OSError):  # until the unit closes it under our feet
        for seq in range(30):
            talker.sendall(hello(seq))
            time.sleep(LOGIN_S / 10)
    assert closed_by_the_unit(talker, 2.0)
    assert agent.stats["dropped"] == 2
    silent.close()
    talker.close()


def test_a_peer_that_never_reads_is_dropped_within_the_send_timeout(start_agent) -> None:
    agent = start_agent()
    blob = bytes(60_000)

    @agent.command("test.blob", auth=False)
    def send_blob(args, data):
        return {}, blob

    # A small receive buffer and 200 replies of 60 kB: far more than the sockets hold.
    stalled = silent_peer(agent.url, receive_buffer=4096)
    stalled.sendall(hello(1))
    for seq in range(2, 202):
        stalled.sendall(encode_frame(Frame(Kind.REQUEST, seq, {"cmd": "test.blob"})))
    stuck = time.monotonic()
    # Meanwhile another host is served: the agent itself never waits on the stalled peer.
    with Client.open(agent.url, timeout_s=0.5, retries=1) as client:
        assert client.identify()["device_id"] == agent.identity["device_id"]
    while agent.stats["dropped"] == 0 and time.monotonic() - stuck < SEND_S + 3:
        time.sleep(0.05)
    assert agent.stats["dropped"] == 1, "the peer that does not read was never dropped"
    assert time.monotonic() - stuck < SEND_S + 3
    assert closed_by_the_unit(stalled, 3.0)
    stalled.close()


def test_peers_beyond_the_bound_wait_their_turn(start_agent) -> None:
    agent = start_agent(max_peers=2)
    silent = [silent_peer(agent.url) for _ in range(2)]
    time.sleep(0.2)  # both accepted: the agent serves no more at once
    queued = silent_peer(agent.url)  # the kernel's listen queue holds it
    queued.sendall(hello(7))
    start = time.monotonic()
    queued.settimeout(LOGIN_S / 2)
    with pytest.raises(TimeoutError):  # not served yet
        queued.recv(65536)
    # Served once a slot is free: the silent peers are closed at their login timeout.
    queued.settimeout(LOGIN_S + 2)
    replies = list(FrameDecoder(DEFAULT_MAX_FRAME).feed(queued.recv(65536)))
    waited = time.monotonic() - start
    assert [(r.kind, r.seq) for r in replies] == [(Kind.REPLY, 7)]
    assert replies[0].header["device_id"] == agent.identity["device_id"]
    assert LOGIN_S - 0.5 < waited < LOGIN_S + 2
    assert all(closed_by_the_unit(peer, 1.0) for peer in silent)
    for peer in (*silent, queued):
        peer.close()


def test_a_serial_line_gives_up_a_write_after_the_send_timeout(tmp_path) -> None:
    # One peer on a serial line: nothing to drop, but a write never blocks the agent for
    # longer than the send timeout (pyserial's write_timeout).
    agent = Agent("loop://", state_dir=tmp_path / "unit", modules=(), send_timeout_s=0.7)
    try:
        assert agent.port.write_timeout == 0.7
    finally:
        agent.port.close()
