"""``bedside-host``: help with examples, one-line errors, JSON, ports, pairing end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge.errors import BedsideError
from edge.link.auth import PublicKey
from host_tools.cli import cli, main
from host_tools.devices import Port, resolve_port
from host_tools.keys import HostKey

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> subprocess.CompletedProcess:
    """``python -m host_tools ARGV`` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "host_tools", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    commands = list(all_commands(cli))
    assert {("keys", "init"), ("keys", "authorize"), ("devices",), ("status",), ("sim",)} <= {
        path for path, _ in commands
    }
    # Every command a person runs (the leaves, and the top level) shows an example.
    leaves = [path for path, command in commands if not isinstance(command, click.Group)]
    for path in [(), *leaves]:
        result = runner.invoke(cli, [*path, "--help"], prog_name="bedside-host")
        assert result.exit_code == 0, path
        assert "example" in result.output, path


def test_usage_error_is_one_line_with_a_code(capsys) -> None:
    assert main(["status", "--no-such-option"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error E382: ") and "\n" not in err and "--help" in err


def test_bedside_error_is_one_line_and_exit_1(capsys, keys_dir) -> None:
    assert main(["keys", "show"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error E324: ") and err.count("\n") == 1


def test_keys_init_and_show_json(capsys, keys_dir) -> None:
    assert main(["keys", "init", "--name", "bench", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["kind"] == "host" and made["public_key"].startswith("ed25519 ")
    assert main(["keys", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["public_key"] == made["public_key"]
    assert main(["keys", "init"]) == 1  # never overwrites silently
    assert "E327" in capsys.readouterr().err


def test_devices_json_lists_ports(capsys) -> None:
    assert main(["devices", "--all", "--json"]) == 0
    ports = json.loads(capsys.readouterr().out)["ports"]
    assert isinstance(ports, list)
    for p in ports:
        assert {"device", "usb_id", "serial_number", "vid", "pid"} <= set(p)


def usb_port(device: str, serial: str) -> Port:
    return Port(device, "Bedside unit", 0x2E8A, 0x000A, serial, "Bedside", "BCG unit", "1-1")


def test_port_auto_picks_the_only_candidate_or_refuses(monkeypatch) -> None:
    one = [usb_port("/dev/ttyACM0", "E66138935F")]
    assert resolve_port("auto", candidates=one) == "/dev/ttyACM0"
    assert resolve_port("socket://127.0.0.1:9", candidates=[]) == "socket://127.0.0.1:9"
    assert one[0].usb_id == "2e8a:000a"
    with pytest.raises(BedsideError) as info:
        resolve_port("auto", candidates=[])
    assert info.value.code == "E380"
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # not a terminal: no prompt
    two = [*one, usb_port("/dev/ttyACM1", "E66138935G")]
    with pytest.raises(BedsideError) as info:
        resolve_port("auto", candidates=two)
    assert info.value.code == "E381" and "/dev/ttyACM1" in str(info.value)


def test_sim_pair_and_status_end_to_end(unit, keys_dir) -> None:
    assert run("keys", "init", "--name", "bench").returncode == 0
    before = run("status", "--port", unit.url, "--json")
    assert before.returncode == 0, before.stderr
    info = json.loads(before.stdout)
    assert info["device_id"] == unit.device_id and info["hardware"] == "sim"
    assert info["pairing_open"] is True and "E321" in info["authentication"]
    assert not (keys_dir / "known_units").exists()  # a refused login pins nothing
    paired = run("keys", "authorize", "--port", unit.url, "--json")
    assert paired.returncode == 0, paired.stderr
    assert json.loads(paired.stdout)["added"] is True
    # Pairing pins the key the unit proved itself with.
    pinned = (keys_dir / "known_units").read_text().split()
    assert pinned[:2] == [unit.device_id, "ed25519"]
    assert info["unit_key"] == PublicKey.parse(" ".join(pinned[1:])).fingerprint
    after = run("status", "--port", unit.url, "--json", "--trace")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["authenticated"] is True
    assert "> REQUEST" in after.stderr and "  00000000  " in after.stderr  # --trace


def test_status_exits_1_when_this_laptop_cannot_log_in_or_the_unit_key_changed(
    unit, keys_dir, tmp_path
) -> None:
    """A script reads the exit status: no host key (E324) or a unit that proves itself with
    another key than the one pinned for it (E328) is not a healthy unit (issue 17)."""
    no_key = run("status", "--port", unit.url, "--json")
    assert no_key.returncode == 1 and no_key.stderr.startswith("error E324: "), no_key.stderr
    assert "E324" in json.loads(no_key.stdout)["authentication"]  # the identity still shown
    assert run("keys", "init", "--name", "bench").returncode == 0
    assert run("keys", "authorize", "--port", unit.url).returncode == 0
    assert run("status", "--port", unit.url).returncode == 0  # paired: all is well
    pinned = keys_dir / "known_units"
    device_id = pinned.read_text().split()[0]
    impostor = HostKey.generate(tmp_path / "impostor", name="impostor").public
    pinned.write_text(f"{device_id} {impostor.line()}\n")  # another key pinned for the unit
    changed = run("status", "--port", unit.url)
    assert changed.returncode == 1 and "E328" in changed.stdout
    assert changed.stderr.startswith("error E328: ") and changed.stderr.count("\n") == 1


def test_link_error_from_the_cli_is_one_line(keys_dir) -> None:
    result = run("status", "--port", "/dev/does-not-exist-bedside")
    assert result.returncode == 1
    assert result.stderr.startswith("error E300: ") and result.stderr.count("\n") == 1


def test_port_auto_asks_on_a_terminal(monkeypatch) -> None:
    two = [usb_port("/dev/ttyACM0", "A"), usb_port("/dev/ttyACM1", "B")]
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(click, "prompt", lambda *args, **kwargs: 2)
    assert resolve_port("auto", candidates=two) == "/dev/ttyACM1"
