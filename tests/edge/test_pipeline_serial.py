"""``bedside run --source serial:PORT`` end to end: the firmware's own code on a virtual
sensor, through the serial source, the real gate and the store, with the cable pulled in the
middle (real time: about 14 s)."""

from __future__ import annotations

import time

from edge.firmware.virtual import VirtualSensor
from edge.pipeline import Pipeline, Settings
from edge.quality import QualityGate
from edge.sources.serial import SerialSource
from edge.store import Store

FAST = {"answer_timeout_s": 0.2, "stall_s": 1.5, "backoff_s": (0.1, 0.4)}


def test_a_live_night_survives_a_pulled_cable(tmp_path):
    with VirtualSensor(seed=3) as sensor:
        source = SerialSource(sensor.url, fs=250.0, **FAST)  # a quick link for a test
        store = Store(tmp_path / "night.db")
        begin = time.monotonic()
        dropped = []

        def stop() -> str | None:
            elapsed = time.monotonic() - begin
            if elapsed > 11.5 and not dropped:  # after the first 10 s window
                dropped.append(elapsed)
                sensor.drop()  # the cable is pulled and plugged back in
            return "stopped by test" if elapsed > 13.5 else None

        result = Pipeline(source, store, QualityGate(250.0), Settings(epoch_s=5.0)).run(stop)
    assert result.reason == "stopped by test"
    assert 250 * 10 < result.samples <= 250 * 14
    (session,) = store.sessions()
    assert session.clean and session.source == source.name
    kinds = [e.kind for _, e in store.events()]
    assert "sensor_disconnect" in kinds and "sensor_reconnect" in kinds
    assert kinds[-1] == "shutdown"
    epochs = [e for _, e in store.epochs()]
    assert len(epochs) >= 1 and all(e.duration_s <= 5.0 for e in epochs)
    assert all(b.t_utc > a.t_utc for a, b in zip(epochs, epochs[1:], strict=False))
    store.close()
