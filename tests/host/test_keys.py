"""Keys and trust: key files, authorized_hosts, and the agent's challenge-response."""

from __future__ import annotations

import base64
import os
import stat
import threading
import time

import pytest

from edge.errors import BedsideError
from edge.link import Client
from edge.link.auth import PublicKey, add_authorized, challenge_message, read_authorized
from edge.link.frame import Frame, Kind
from edge.link.session import KeyExchange, SessionCipher
from edge.maint.agent import Agent
from host_tools.keys import HostKey, KnownUnits, ReleaseKey


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def signed_login(
    client: Client, key: HostKey, *, device_id: str | None = None, signer: HostKey | None = None
) -> tuple[dict, SessionCipher]:
    """Ask a challenge and sign it by hand (what Client.authenticate does), optionally for
    another device id or with another key: the login's arguments and its host session."""
    exchange = KeyExchange()
    challenge, _ = client.call("auth.challenge", {"ephemeral": b64(exchange.public)})
    theirs = base64.b64decode(challenge["ephemeral"])
    message = challenge_message(
        bytes.fromhex(challenge["nonce"]),
        device_id or challenge["device_id"],
        key.public_raw,
        exchange.public,
        theirs,
    )
    args = {"public_key": b64(key.public_raw), "signature": b64((signer or key).sign(message))}
    return args, exchange.cipher(theirs, message, role="host", code="E311")


# --- key files ------------------------------------------------------------------------------


def test_host_key_is_private_and_loads_back(keys_dir) -> None:
    key = HostKey.generate(keys_dir, name="bench laptop")
    assert stat.S_IMODE((keys_dir / "host_key").stat().st_mode) == 0o600
    assert key.name == "bench-laptop"
    loaded = HostKey.load(keys_dir)
    assert loaded.public_raw == key.public_raw and loaded.name == "bench-laptop"
    message = b"anything"
    assert key.public.verify(loaded.sign(message), message)
    public = (keys_dir / "host_key.pub").read_text()
    assert PublicKey.parse(public) == key.public
    assert "PRIVATE" not in public


def test_existing_key_is_kept_unless_forced(keys_dir) -> None:
    first = HostKey.generate(keys_dir)
    with pytest.raises(BedsideError) as info:
        HostKey.generate(keys_dir)
    assert info.value.code == "E327"
    assert HostKey.load(keys_dir).public_raw == first.public_raw
    assert HostKey.generate(keys_dir, force=True).public_raw != first.public_raw


def test_missing_unsafe_and_damaged_key_files(keys_dir) -> None:
    with pytest.raises(BedsideError) as info:
        HostKey.load(keys_dir)
    assert info.value.code == "E324" and "keys init" in str(info.value)
    HostKey.generate(keys_dir)
    os.chmod(keys_dir / "host_key", 0o644)
    with pytest.raises(BedsideError) as info:
        HostKey.load(keys_dir)
    assert info.value.code == "E325" and "chmod 600" in str(info.value)
    os.chmod(keys_dir / "host_key", 0o600)
    (keys_dir / "host_key").write_text("not a key")
    with pytest.raises(BedsideError) as info:
        HostKey.load(keys_dir)
    assert info.value.code == "E325"


def test_release_key_writes_release_pub(keys_dir) -> None:
    key = ReleaseKey.generate(keys_dir, name="release-2026")
    assert PublicKey.parse((keys_dir / "release.pub").read_text()).raw == key.public_raw
    assert ReleaseKey.load(keys_dir).public_raw == key.public_raw


@pytest.mark.parametrize(
    "line",
    ["", "ssh-ed25519 AAAA x", "ed25519 !!!notbase64", "ed25519 " + "QUFB" * 4, "ed25519"],
)
def test_malformed_public_key_lines(line: str) -> None:
    with pytest.raises(BedsideError) as info:
        PublicKey.parse(line)
    assert info.value.code == "E326"


def test_authorized_hosts_add_is_idempotent_and_skips_bad_lines(tmp_path, host_key) -> None:
    path = tmp_path / "authorized_hosts"
    path.write_text("# comment\ned25519 garbage\n")
    assert add_authorized(path, host_key.public)
    assert not add_authorized(path, host_key.public)
    assert [k.raw for k in read_authorized(path)] == [host_key.public_raw]
    assert path.read_text().startswith("# comment\n")


# --- the agent's trust rules ------------------------------------------------------------------


def test_unauthenticated_host_gets_nothing_but_identification(tmp_path) -> None:
    # An agent with every installed command module (flashing, logs...): each command but
    # identification and the handshake answers E320, whatever the arguments.
    agent = Agent("listen://127.0.0.1:0", state_dir=tmp_path / "unit")
    serving = threading.Thread(target=agent.serve_forever, daemon=True)
    serving.start()
    served = {"hello", "identify", "auth.challenge", "auth.response", "keys.authorize"}
    try:
        with Client.open(agent.url) as client:
            for name, (_, needs_auth) in agent._handlers.items():
                if name in served:
                    assert not needs_auth
                    continue
                for args in ({}, {"offset": 0, "since_id": 0, "name": "x"}):
                    with pytest.raises(BedsideError) as info:
                        client.call(name, args, b"x")
                    assert info.value.code == "E320", name
            with pytest.raises(BedsideError) as info:  # not even whether a command exists
                client.call("no.such.command")
            assert info.value.code == "E320"
    finally:
        agent.stop()
        serving.join(timeout=5)
    assert len(agent._handlers) > len(served)


def test_every_handler_module_requires_authentication(unit, host_key) -> None:
    # The virtual unit registers every installed module (flashing, logs...): none of their
    # commands may answer before authentication.
    probes = ["flash.begin", "flash.chunk", "slots.status", "slots.rollback", "logs.read"]
    with Client.open(unit.url) as client:
        for name in probes:
            with pytest.raises(BedsideError) as info:
                client.call(name, {"offset": 0}, b"\x00" * 10)
            assert info.value.code == "E320", name


def test_wrong_key_is_refused(local_paired, keys_dir, tmp_path) -> None:
    agent, _ = local_paired
    stranger = HostKey.generate(tmp_path / "other-keys", name="stranger")
    with Client.open(agent.url) as client:
        with pytest.raises(BedsideError) as info:
            client.authenticate(stranger)
        assert info.value.code == "E321"
        with pytest.raises(BedsideError) as info:
            client.call("ping")
        assert info.value.code == "E320"


def test_replayed_signature_is_refused(local_paired) -> None:
    agent, key = local_paired
    with Client.open(agent.url) as client:
        signed, client._pending = signed_login(client, key)
        client.call("auth.response", signed)  # genuine: accepted, its answer sealed
        assert client.sealed
    # An eavesdropper replays the recorded answer on a new link.
    with Client.open(agent.url) as client:
        with pytest.raises(BedsideError) as info:  # no challenge pending at all
            client.call("auth.response", signed)
        assert info.value.code == "E322"
        fresh = {"ephemeral": b64(KeyExchange().public)}
        client.call("auth.challenge", fresh)  # a fresh nonce: the old signature does not match
        with pytest.raises(BedsideError) as info:
            client.call("auth.response", signed)
        assert info.value.code == "E321"
        with pytest.raises(BedsideError) as info:  # the nonce was used up by the failure
            client.call("auth.response", signed)
        assert info.value.code == "E322"
        with pytest.raises(BedsideError) as info:
            client.call("ping")
        assert info.value.code == "E320"


def test_duplicate_challenge_request_gets_the_same_nonce(local_paired) -> None:
    # A challenge request resent after a delay must not draw a new nonce behind the host's
    # back (its answer would then be refused).
    agent, key = local_paired
    with Client.open(agent.url) as client:
        exchange = KeyExchange()
        args = {"ephemeral": b64(exchange.public)}
        request = Frame(Kind.REQUEST, 4242, {"cmd": "auth.challenge", "args": args})
        first = client._exchange(request, 2.0).header
        again = client._exchange(request, 2.0).header
        assert first == again  # the same nonce and the same session key of the unit
        theirs = base64.b64decode(first["ephemeral"])
        message = challenge_message(
            bytes.fromhex(first["nonce"]),
            first["device_id"],
            key.public_raw,
            exchange.public,
            theirs,
        )
        client._pending = exchange.cipher(theirs, message, role="host", code="E311")
        client.call(
            "auth.response",
            {"public_key": b64(key.public_raw), "signature": b64(key.sign(message))},
        )
        assert client.call("ping")[0]["received"] == 0


def test_signature_of_another_unit_is_refused(local_paired) -> None:
    agent, key = local_paired
    with Client.open(agent.url) as client:
        # Signed for the right nonce but another device id: relaying to another unit fails.
        args, _ = signed_login(client, key, device_id="bcg-000000000000")
        with pytest.raises(BedsideError) as info:
            client.call("auth.response", args)
        assert info.value.code == "E321"


def test_reconnecting_peer_must_authenticate_again(local_paired) -> None:
    agent, key = local_paired
    with Client.open(agent.url) as client:
        client.authenticate(key)
        client.call("ping")
    with Client.open(agent.url) as client:
        with pytest.raises(BedsideError) as info:
            client.call("ping")
        assert info.value.code == "E320"


def test_the_unit_key_is_private_stable_and_shown_by_identify(tmp_path) -> None:
    first = Agent("listen://127.0.0.1:0", state_dir=tmp_path / "unit", modules=())
    first.port.close()
    path = tmp_path / "unit" / "keys" / "unit_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Agent("listen://127.0.0.1:0", state_dir=tmp_path / "unit", modules=())
    again.port.close()
    assert again.unit_key == first.unit_key and len(first.unit_key) == 32
    other = Agent("listen://127.0.0.1:0", state_dir=tmp_path / "other", modules=())
    other.port.close()
    assert other.unit_key != first.unit_key
    path.write_text("not a key")
    with pytest.raises(BedsideError) as info:  # never quietly a new unit
        Agent("listen://127.0.0.1:0", state_dir=tmp_path / "unit", modules=())
    assert info.value.code == "E384" and "unit_key" in str(info.value)


def test_known_units_pin_once_and_refuse_a_changed_key(tmp_path, local_paired) -> None:
    agent, key = local_paired
    known = KnownUnits(tmp_path / "laptop")
    device_id = agent.identity["device_id"]
    known.check(device_id, bytes(32))  # unknown: nothing to refuse yet
    assert known.pinned() == {}
    with Client.open(agent.url) as client:
        client.authenticate(key, unit_keys=known)
        assert client.unit_key == agent.unit_key
        assert client.identify()["unit_key"] == PublicKey(agent.unit_key).fingerprint
    assert known.pinned()[device_id].raw == agent.unit_key
    known.pin(device_id, bytes(32))  # already known: the first key stays
    assert known.pinned()[device_id].raw == agent.unit_key
    with pytest.raises(BedsideError) as info:
        known.check(device_id, bytes(range(32)))
    assert info.value.code == "E328" and device_id in str(info.value)
    assert "\n" not in str(info.value)
    known.check(device_id, agent.unit_key)  # the pinned key passes


# --- pairing ------------------------------------------------------------------------------------


def test_pairing_needs_the_window(local_agent, host_key) -> None:
    with Client.open(local_agent.url) as client:
        with pytest.raises(BedsideError) as info:
            client.authorize(host_key, "laptop")
        assert info.value.code == "E323" and "pairing" in str(info.value)
    assert not read_authorized(local_agent.keys_dir / "authorized_hosts")


def test_expired_window_is_closed(local_agent, host_key) -> None:
    # Made old in one step: the serving agent stamps a new window within a second.
    staged = local_agent.state_dir / ".pairing.staged"
    staged.touch()
    old = time.time() - 3600
    os.utime(staged, (old, old))
    staged.rename(local_agent.state_dir / "pairing")
    with Client.open(local_agent.url) as client, pytest.raises(BedsideError) as info:
        client.authorize(host_key, "laptop")
    assert info.value.code == "E323"


def test_pairing_installs_the_key_once_and_closes_the_window(local_agent, host_key, tmp_path):
    (local_agent.state_dir / "pairing").touch()
    with Client.open(local_agent.url) as client:
        reply = client.authorize(host_key, "bench laptop")
        assert reply["added"] is True
        assert client.call("ping")[0]["received"] == 0  # the link is authenticated now
    assert not (local_agent.state_dir / "pairing").exists()
    keys = read_authorized(local_agent.keys_dir / "authorized_hosts")
    assert [(k.raw, k.name) for k in keys] == [(host_key.public_raw, "bench-laptop")]
    # The window is used up: a second host cannot pair without the button again.
    other = HostKey.generate(tmp_path / "other", name="other")
    with Client.open(local_agent.url) as client, pytest.raises(BedsideError) as info:
        client.authorize(other, "other")
    assert info.value.code == "E323"


def test_paired_host_can_add_itself_again_without_the_window(local_paired) -> None:
    agent, key = local_paired
    with Client.open(agent.url) as client:
        client.authenticate(key)
        assert client.authorize(key, "again")["added"] is False


def test_pairing_proves_possession_of_the_key(local_agent, host_key, tmp_path) -> None:
    (local_agent.state_dir / "pairing").touch()
    other = HostKey.generate(tmp_path / "other", name="other")
    with Client.open(local_agent.url) as client:
        # host_key's public part, other's signature
        args, _ = signed_login(client, host_key, signer=other)
        with pytest.raises(BedsideError) as info:
            client.call("keys.authorize", args)
        assert info.value.code == "E321"
    assert (local_agent.state_dir / "pairing").exists()
