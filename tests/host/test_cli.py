"""``bedside-host``: help with examples, one-line errors, JSON, ports, pairing end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge.errors import BedsideError
from edge.heartbeat import Heartbeat
from edge.link.auth import PublicKey
from edge.store import STORE_NAME
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
    assert no_key.returncode == 1, no_key.stderr
    assert json.loads(no_key.stderr)["error"]["code"] == "E324"  # --json: the error as JSON
    assert "E324" in json.loads(no_key.stdout)["authentication"]  # the identity still shown
    text = run("status", "--port", unit.url)
    assert text.returncode == 1 and text.stderr.startswith("error E324: "), text.stderr
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


def test_status_exits_1_when_the_units_runtime_has_stopped(unit, keys_dir) -> None:
    """The unit answers, but its runtime records nothing: E392 on stderr, exit 1."""
    assert run("keys", "init", "--name", "bench").returncode == 0
    assert run("keys", "authorize", "--port", unit.url).returncode == 0
    assert run("status", "--port", unit.url).returncode == 0  # no runtime started yet
    heartbeat = Heartbeat(unit.state / STORE_NAME, release="0.1.0", source="sim:1")
    heartbeat.beat()
    assert run("status", "--port", unit.url).returncode == 0  # recording
    heartbeat.stopped("end of source")
    stopped = run("status", "--port", unit.url)
    assert stopped.returncode == 1 and "runtime_state: stopped" in stopped.stdout
    assert stopped.stderr.startswith("error E392: the runtime (release 0.1.0) stopped")
    as_json = run("status", "--port", unit.url, "--json")
    assert json.loads(as_json.stderr)["error"]["code"] == "E392"


def test_link_error_from_the_cli_is_one_line(keys_dir) -> None:
    result = run("status", "--port", "/dev/does-not-exist-bedside")
    assert result.returncode == 1
    assert result.stderr.startswith("error E300: ") and result.stderr.count("\n") == 1


def test_port_auto_asks_on_a_terminal(monkeypatch) -> None:
    two = [usb_port("/dev/ttyACM0", "A"), usb_port("/dev/ttyACM1", "B")]
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(click, "prompt", lambda *args, **kwargs: 2)
    assert resolve_port("auto", candidates=two) == "/dev/ttyACM1"


# --- issue 17: errors as JSON under --json, port conventions ---------------------------------

ERROR_CODE = re.compile(r"^E\d{3}$")


def failing_argv(
    path: tuple[str, ...], command: click.Command, tmp_path: Path
) -> tuple[list[str], bool]:
    """A command line of ``path`` that fails, and whether with one of the command's own
    errors (else a usage error: a command with no failure known here)."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    bundle = tmp_path / "some.bundle"
    bundle.write_bytes(b"not a bundle")
    known = {
        ("keys", "init"): ["keys", "init"],  # the host key exists: E327
        ("keys", "show"): ["keys", "show", "--release"],  # no release key: E324
        ("bundle", "build"): ["bundle", "build", "--version", "1.0.0", "--out", str(bundle)],
        ("logs", "export"): ["logs", "export", "--archive", str(empty), "--out", str(empty)],
        ("sim",): ["sim", "--state", str(tmp_path / "u"), "--release-key", str(empty / "no")],
        ("flash",): ["flash", str(bundle), "-p", "127.0.0.1:9"],
        ("logs", "pull"): ["logs", "pull", "--archive", str(empty), "-p", "127.0.0.1:9"],
    }
    if path in known:
        return [*known[path], "--json"], True
    if any(param.name == "port" for param in command.params):
        return [*path, "-p", "127.0.0.1:9", "--json"], True  # E385: a bare HOST:PORT
    return [*path, "--json", "--no-such-option"], False  # E382, the command line


def test_every_json_command_prints_its_error_as_one_json_object(capsys, keys_dir, tmp_path) -> None:
    """Under --json a failure is one JSON object on stderr, {"error": {code, message, hint}},
    with the exit status of the text line (issue 17, item 4)."""
    HostKey.generate(keys_dir, name="bench")
    with_json = [
        (path, command)
        for path, command in all_commands(cli)
        if any(param.name == "as_json" for param in command.params)
    ]
    assert len(with_json) >= 12
    own_errors = 0
    for path, command in with_json:
        argv, own_error = failing_argv(path, command, tmp_path)
        code = main(argv)
        out, err = capsys.readouterr()
        assert code in (1, 2), argv
        assert err.count("\n") == 1 and "error E" not in out, (argv, err)
        error = json.loads(err)["error"]
        assert set(error) == {"code", "message", "hint"}, argv
        assert ERROR_CODE.match(error["code"]) and error["message"] and error["hint"], argv
        assert " — " not in error["message"], argv  # what happened, apart from what to do
        assert (error["code"] != "E382") == own_error, argv
        own_errors += own_error
    assert own_errors >= 11  # all but devices (which cannot fail) and commands added later


def test_json_error_keeps_the_text_line_without_json(capsys, keys_dir) -> None:
    assert main(["keys", "show", "--json"]) == 1
    record = json.loads(capsys.readouterr().err)
    assert record["error"]["code"] == "E324"
    assert record["error"]["hint"] == "make one with: bedside-host keys init"
    assert main(["keys", "show"]) == 1
    assert capsys.readouterr().err.startswith("error E324: no host_key in ")
    assert main(["status", "--json", "--bogus"]) == 2  # a usage error, --json given
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "E382"


def port_in_error(capsys, argv: list[str]) -> str:
    """The port a command used, from its E385 (every port here is a bare HOST:PORT)."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error E385: "), err
    return err.split()[2]


def test_port_option_before_or_after_the_command_and_env(capsys, monkeypatch) -> None:
    """-p/--port after the command beats one before it, which beats $BEDSIDE_PORT."""
    monkeypatch.delenv("BEDSIDE_PORT", raising=False)
    assert port_in_error(capsys, ["-p", "before.host:1", "status"]) == "before.host:1"
    assert port_in_error(capsys, ["--port", "before.host:1", "rollback"]) == "before.host:1"
    assert port_in_error(capsys, ["status", "-p", "after.host:2"]) == "after.host:2"
    monkeypatch.setenv("BEDSIDE_PORT", "env.host:3")
    assert port_in_error(capsys, ["status"]) == "env.host:3"
    assert port_in_error(capsys, ["-p", "before.host:1", "status"]) == "before.host:1"
    argv = ["-p", "before.host:1", "rollback", "-p", "after.host:2"]
    assert port_in_error(capsys, argv) == "after.host:2"


def test_port_before_the_command_reaches_the_unit(unit, host_key) -> None:
    done = run("-p", unit.url, "status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["device_id"] == unit.device_id


@pytest.mark.parametrize("address", ["127.0.0.1:7000", "localhost:5555", "unit-3.local:7000"])
def test_bare_host_port_is_refused_with_the_url_to_use(address) -> None:
    with pytest.raises(BedsideError) as info:
        resolve_port(address)
    assert info.value.code == "E385" and f"--port socket://{address}" in str(info.value)


@pytest.mark.parametrize(
    "port", ["socket://127.0.0.1:7000", "/dev/ttyACM0", "loop://", "COM3", "rfc2217://h:1"]
)
def test_ports_that_name_a_port_pass(port) -> None:
    assert resolve_port(port) == port


def test_the_units_agent_takes_p_too() -> None:
    """One spelling of the port across the tools: ``bedside agent -p`` as ``bedside-host``."""
    import argparse

    from edge.maint.agent import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["agent", "-p", "listen://127.0.0.1:0", "--state", "/tmp/u"])
    assert args.port == "listen://127.0.0.1:0"
