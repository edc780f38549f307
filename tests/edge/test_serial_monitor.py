"""``python -m edge.sources.monitor``: the raw signal of a (virtual) sensor, as text."""

from __future__ import annotations

import io
import json

import numpy as np

from edge.firmware.virtual import VirtualSensor
from edge.readers import read_recording
from edge.sources.monitor import main


def test_json_status_lines(capsys):
    with VirtualSensor(list(range(1000, 60000))) as sensor:
        assert main([sensor.url, "--seconds", "2.2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["sensor"]["rate"] == 250 and lines[0]["sensor"]["firmware"]
    status = lines[1:]
    assert len(status) == 2
    assert all(150 <= s["samples"] <= 350 and s["link"]["crc_errors"] == 0 for s in status)
    assert status[0]["min"] == 1000  # the first sample the ADC took


def test_raw_csv_replays_as_a_recording(capsys, tmp_path):
    with VirtualSensor(list(range(60000))) as sensor:
        assert main([sensor.url, "--seconds", "0.8", "--raw", "--fs", "500"]) == 0
    out = capsys.readouterr().out
    (tmp_path / "bench.csv").write_text(out)
    rec = read_recording(tmp_path / "bench.csv")
    assert rec.fs == 500
    np.testing.assert_array_equal(rec.signal, np.arange(len(rec.signal)))
    assert len(rec.signal) >= 300
    assert np.loadtxt(io.StringIO(out), delimiter=",", skiprows=1).shape[1] == 2


def test_error_line_and_exit_code(capsys):
    assert main(["socket://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error E240: ") and err.count("\n") == 1
