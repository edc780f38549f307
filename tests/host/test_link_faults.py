"""The link through a damaging proxy: every call completes once, with the right answer."""

from __future__ import annotations

import hashlib
import threading

import pytest
from faultproxy import Faults

from edge.link import Client, LinkError


def counting_agent(agent):
    """Add ``test.sum``: returns the SHA-256 of the data, and counts its runs per tag."""
    runs: dict[str, int] = {}

    @agent.command("test.sum")
    def digest(args, data):
        runs[args["tag"]] = runs.get(args["tag"], 0) + 1
        return {"sha256": hashlib.sha256(data).hexdigest()}, data[:100]

    return runs


def run_calls(client: Client, n: int, size: int) -> None:
    for i in range(n):
        data = (i.to_bytes(4, "big") * (size // 4 + 1))[:size]
        reply, echo = client.call("test.sum", {"tag": f"call{i}"}, data)
        assert reply["sha256"] == hashlib.sha256(data).hexdigest()
        assert echo == data[:100]


@pytest.mark.parametrize(
    "faults",
    [
        Faults(drop=0.05),
        Faults(corrupt=0.05),
        Faults(delay_s=0.01, drop=0.02, corrupt=0.02),
    ],
    ids=["drop", "corrupt", "delay+drop+corrupt"],
)
def test_calls_complete_exactly_once_through_faults(local_paired, fault_proxy, faults) -> None:
    agent, key = local_paired
    runs = counting_agent(agent)
    proxy = fault_proxy(agent.url, seed=7)
    with Client.open(proxy.url, timeout_s=0.2, retries=12) as client:
        client.authenticate(key)
        proxy.faults = faults  # damage from here on (the handshake ran clean)
        run_calls(client, 15, 3000)
    damaged = proxy.stats.dropped + proxy.stats.corrupted
    assert damaged > 0, "the proxy did no damage: the test proved nothing"
    assert client.stats["resent"] > 0
    assert runs == {f"call{i}": 1 for i in range(15)}  # retries never ran a handler twice


def test_handshake_itself_survives_faults(local_paired, fault_proxy) -> None:
    # One 32-byte chunk in ten damaged (dropped or flipped). The challenge's answer carries
    # two keys and the unit's signature (about 350 bytes, 11 chunks: a fifth of the tries
    # get through whole), hence the retries.
    agent, key = local_paired
    proxy = fault_proxy(agent.url, Faults(drop=0.05, corrupt=0.05, chunk=32), seed=3)
    with Client.open(proxy.url, timeout_s=0.2, retries=25) as client:
        client.authenticate(key)
        assert client.identify()["authenticated"] is True
    assert proxy.stats.dropped and proxy.stats.corrupted  # the faults did happen


def test_cut_link_reconnects_reauthenticates_and_resends(local_paired, fault_proxy) -> None:
    agent, key = local_paired
    runs = counting_agent(agent)
    # Each of the first 3 connections is cut after 20 kB; the client reconnects each time.
    proxy = fault_proxy(agent.url, Faults(cut_after=20_000, cuts=3), seed=1)
    with Client.open(proxy.url, timeout_s=0.5, retries=4) as client:
        client.authenticate(key)
        run_calls(client, 20, 4000)
    assert proxy.stats.cut >= 3 and client.stats["reconnects"] >= 3
    # Retries on one connection never ran a handler twice. A call whose reply was lost to a
    # cut runs again on the new connection: the reply cache is the connection's (a login
    # replayed on another one must not be answered from it), and the unit's commands are
    # safe to repeat. So at most one call per cut ran twice.
    assert set(runs) == {f"call{i}" for i in range(20)}
    assert set(runs.values()) <= {1, 2}
    assert sum(runs.values()) - len(runs) <= proxy.stats.cut


def test_manual_cut_in_the_middle_of_a_slow_call(local_paired, fault_proxy) -> None:
    agent, key = local_paired
    proxy = fault_proxy(agent.url)
    started = threading.Event()
    runs = []

    @agent.command("test.slow")
    def slow(args, data):
        runs.append(1)
        started.set()
        threading.Event().wait(0.5)
        return {"ok": True}, b""

    with Client.open(proxy.url, timeout_s=0.5, retries=3) as client:
        client.authenticate(key)
        threading.Thread(target=lambda: (started.wait(5), proxy.cut()), daemon=True).start()
        assert client.call("test.slow")[0] == {"ok": True}
    # Its reply was lost to the cut: the call ran again on the new connection, once (the
    # reply cache is the connection's; test_reply_cache.py).
    assert len(runs) == 2


def test_unit_gone_for_good_fails_cleanly(local_paired, fault_proxy) -> None:
    agent, key = local_paired
    proxy = fault_proxy(agent.url)
    client = Client.open(proxy.url, timeout_s=0.2, retries=2)
    client.authenticate(key)
    proxy.close()  # the unit is unplugged and stays away
    with pytest.raises(LinkError) as info:
        client.call("ping")
    assert info.value.code in ("E301", "E302")
    assert "\n" not in str(info.value)
    client.close()


def test_kill_9_of_the_unit_then_restart(paired_unit) -> None:
    unit, key = paired_unit
    client = Client.open(unit.url, timeout_s=0.5, retries=8)
    client.authenticate(key)
    assert client.call("ping", {"n": 1})[0]["args"] == {"n": 1}
    unit.kill()
    unit.start()  # same state, same URL: the client reconnects and authenticates again
    assert client.call("ping", {"n": 2})[0]["args"] == {"n": 2}
    assert client.stats["reconnects"] >= 1
    client.close()


def test_bulk_frame_on_a_slow_line_is_not_resent(local_paired, fault_proxy) -> None:
    # 30 kB on a 200000-baud line (20 kB/s) take 1.5 s to cross, longer than the timeout:
    # the wait for the reply starts when the frame has crossed, so nothing is sent twice.
    agent, key = local_paired
    proxy = fault_proxy(agent.url, Faults(rate=20_000, chunk=512))
    with Client.open(proxy.url, timeout_s=0.5, retries=0, baudrate=200_000) as client:
        client.authenticate(key)
        reply, _ = client.call("ping", {}, b"\x55" * 30_000)
    assert reply["received"] == 30_000 and client.stats["resent"] == 0
