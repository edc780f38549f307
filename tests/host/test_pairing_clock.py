"""The pairing window against the wall clock (issue 16, finding 3): it is judged by the
clock of this boot, so setting the wall clock can close a window but never open one.

The agent's window is :class:`edge.maint.agent.PairingWindow` (``DIR/pairing``); the tests of
the class pass their own clocks, the end-to-end ones move ``time.time``.
"""

from __future__ import annotations

import os
import time

import pytest

from edge.errors import BedsideError
from edge.link import Client
from edge.maint.agent import PAIRING_WINDOW_S, PairingWindow, read_boot_id
from host_tools.virtual_unit import VirtualUnit

BOOT = "5e0d1c1e-2b4f-4f7e-9d1a-0123456789ab"


class Clocks:
    """A boot clock and a wall clock that the test moves."""

    def __init__(self) -> None:
        self.boot = 1000.0
        self.wall = 1_800_000_000.0

    def window(self, path) -> PairingWindow:
        return PairingWindow(path, clock=lambda: self.boot, wall=lambda: self.wall, boot_id=BOOT)

    def touch(self, path, age_s: float, content: bytes = b"") -> None:
        """Write ``path`` (empty: as ``touch`` does) ``age_s`` ago by the wall clock."""
        path.write_bytes(content)
        os.utime(path, (self.wall - age_s, self.wall - age_s))


def dated(path, mtime: float) -> None:
    """Create ``path`` empty with ``mtime``, in one step: a serving agent, which looks at its
    window every second, never sees it with another date."""
    staged = path.with_name(f".{path.name}.staged")
    staged.touch()
    os.utime(staged, (mtime, mtime))
    staged.rename(path)


def stamp(path) -> tuple[str, float]:
    boot_id, seconds = path.read_text().split()
    return boot_id, float(seconds)


def test_a_window_seen_in_the_future_never_opens_by_itself(local_agent, host_key, monkeypatch):
    # The button was pressed, then the clock set back a minute: DIR/pairing is "60 s in the
    # future". It must show closed, and stay closed when the wall clock catches up.
    window = local_agent.state_dir / "pairing"
    dated(window, time.time() + 60)
    with Client.open(local_agent.url) as client:
        assert client.identify()["pairing_open"] is False
        now = time.time
        monkeypatch.setattr(time, "time", lambda: now() + 62)  # 62 s later, no press
        assert client.identify()["pairing_open"] is False
        with pytest.raises(BedsideError) as info:
            client.authorize(host_key, "laptop")
        assert info.value.code == "E323"


def test_a_pressed_window_follows_the_boot_clock_whatever_the_wall_clock_does(tmp_path):
    clocks = Clocks()
    path = tmp_path / "pairing"
    clocks.window(path).press()
    assert stamp(path) == (BOOT, 1000.0)
    window = clocks.window(path)
    for jump in (-3600, 86400, -60):  # set back an hour, on a day, back a minute
        clocks.wall += jump
        assert window.is_open()
    clocks.boot += PAIRING_WINDOW_S
    assert window.is_open()  # ten minutes to the second
    clocks.boot += 1
    assert not window.is_open() and not path.exists()  # closed for good
    clocks.wall -= 86400
    assert not window.is_open()


def test_a_touched_window_is_stamped_once_then_judged_by_the_boot_clock(tmp_path):
    clocks = Clocks()
    path = tmp_path / "pairing"
    window = clocks.window(path)
    clocks.touch(path, age_s=30)
    assert window.is_open()
    assert stamp(path) == (BOOT, 970.0)  # pressed 30 s ago on the boot clock
    clocks.wall -= 3600  # now its mtime is in the future: the stamp decides
    assert window.is_open()
    clocks.boot += PAIRING_WINDOW_S - 30 + 1
    assert not window.is_open() and not path.exists()


@pytest.mark.parametrize(
    ("content", "age_s", "is_open"),
    [
        (b"", 60, True),  # touched a minute ago
        (b"", -60, False),  # in the future: the clock was set back after the press
        (b"", PAIRING_WINDOW_S + 1, False),  # too old
        (b"0f0f0f0f-another-boot 100.0\n", 60, True),  # stamped before a reboot: its mtime
        (b"0f0f0f0f-another-boot 100.0\n", -1, False),
        (b"not a stamp", 60, True),
        (b"\xff\xfe garbage", -60, False),
        (f"{BOOT} nan\n".encode(), 60, True),  # not a usable stamp: its mtime
    ],
)
def test_a_file_without_a_stamp_of_this_boot_is_judged_by_its_mtime_once(
    tmp_path, content, age_s, is_open
) -> None:
    clocks = Clocks()
    path = tmp_path / "pairing"
    clocks.touch(path, age_s, content)
    window = clocks.window(path)
    assert window.is_open() is is_open
    if is_open:
        assert stamp(path) == (BOOT, clocks.boot - age_s)
    else:
        assert not path.exists()  # closed: no later clock change can find it again
    clocks.wall += 2 * abs(age_s)  # the clock catches up, or runs on
    assert window.is_open() is is_open


def test_the_serving_agent_stamps_a_touched_window_at_once(local_agent) -> None:
    path = local_agent.state_dir / "pairing"
    path.touch()  # at the console
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not path.read_text():
        time.sleep(0.05)
    boot_id, _ = stamp(path)
    assert boot_id == read_boot_id()


def test_the_virtual_units_button_writes_a_stamp_of_this_boot(tmp_path) -> None:
    unit = VirtualUnit(tmp_path / "unit", sensor=False, pairing=True)
    try:
        assert stamp(tmp_path / "unit" / "pairing")[0] == read_boot_id()
        assert unit.agent.pairing.is_open()
    finally:
        unit.agent.port.close()
