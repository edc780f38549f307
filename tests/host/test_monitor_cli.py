"""``bedside-host monitor``: the sensor's raw signal from the laptop, the same monitor as
``python -m edge.sources.monitor`` (issue 17, item 5), against the virtual sensor."""

from __future__ import annotations

import json

from edge.firmware.virtual import VirtualSensor
from host_tools.cli import main


def test_monitor_subcommand_json_lines(capsys, monkeypatch) -> None:
    monkeypatch.delenv("BEDSIDE_PORT", raising=False)
    with VirtualSensor(list(range(1000, 60000))) as sensor:
        assert main(["monitor", "-p", sensor.url, "--seconds", "2.2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["sensor"]["rate"] == 250 and lines[0]["sensor"]["firmware"]
    status = lines[1:]
    assert len(status) == 2
    assert all(150 <= s["samples"] <= 350 and s["link"]["crc_errors"] == 0 for s in status)


def test_monitor_takes_the_port_before_the_command_and_sets_the_rate(capsys) -> None:
    with VirtualSensor(list(range(60000))) as sensor:
        assert main(["-p", sensor.url, "monitor", "--fs", "500", "--seconds", "0.8", "--raw"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("# sensor ") and "500 Hz" in err  # the identity, beside the CSV
    lines = out.splitlines()
    assert lines[0] == "time_s,adc" and len(lines) > 300
    assert [int(line.split(",")[1]) for line in lines[1:4]] == [0, 1, 2]


def test_monitor_error_is_one_line_or_one_json_object(capsys) -> None:
    assert main(["monitor", "-p", "socket://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error E240: ") and err.count("\n") == 1
    assert main(["monitor", "-p", "socket://127.0.0.1:9", "--json"]) == 1
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "E240"
    assert main(["monitor", "-p", "127.0.0.1:9"]) == 1  # a bare HOST:PORT: the URL to use
    assert "socket://127.0.0.1:9" in capsys.readouterr().err


def test_the_unit_side_monitor_takes_p_too(capsys) -> None:
    from edge.sources.monitor import main as unit_monitor

    with VirtualSensor(list(range(1000, 60000))) as sensor:
        assert unit_monitor(["-p", sensor.url, "--seconds", "1.2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["sensor"]["rate"] == 250
