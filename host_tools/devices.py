"""Serial ports on the laptop, and ``--port auto``: which one is the unit.

A unit shows up as a USB serial device (the Pi's USB gadget port, or a USB-UART cable), so
the candidates for ``auto`` are the ports with a USB vendor id. Built-in UARTs (``/dev/ttyS*``,
no USB id) are listed by ``devices --all`` but never picked automatically.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass

from serial.tools import list_ports

from edge.errors import fail

__all__ = ["Port", "list_serial_ports", "resolve_port"]

NO_PORT = "E380"
AMBIGUOUS_PORT = "E381"
BARE_ADDRESS = "E385"

#: ``HOST:PORT`` with no scheme (``127.0.0.1:7000``, ``unit.local:7000``): a network address
#: that pyserial would take for a device name.
_BARE_ADDRESS = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}$")


@dataclass(frozen=True)
class Port:
    """One serial port as ``devices`` shows it."""

    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    manufacturer: str | None
    product: str | None
    location: str | None

    @property
    def usb_id(self) -> str | None:
        """``VID:PID`` in hex (as lsusb shows it), or None for a non-USB port."""
        if self.vid is None:
            return None
        return f"{self.vid:04x}:{self.pid or 0:04x}"

    def as_dict(self) -> dict:
        return {**asdict(self), "usb_id": self.usb_id}


def list_serial_ports(*, include_non_usb: bool = False) -> list[Port]:
    """The serial ports of this machine, USB ones (the candidates) first, sorted by path."""
    ports = [
        Port(
            device=p.device,
            description=p.description if p.description != "n/a" else "",
            vid=p.vid,
            pid=p.pid,
            serial_number=p.serial_number,
            manufacturer=p.manufacturer,
            product=p.product,
            location=p.location,
        )
        for p in list_ports.comports()
    ]
    if not include_non_usb:
        ports = [p for p in ports if p.vid is not None]
    return sorted(ports, key=lambda p: (p.vid is None, p.device))


def resolve_port(port: str, *, candidates: list[Port] | None = None) -> str:
    """``port`` itself, or for ``auto`` the one USB serial port; asks when several and
    stdin is a terminal, E381 when it is not, E380 when there is none; E385 for a bare
    ``HOST:PORT`` (it names no device: ``socket://HOST:PORT`` does)."""
    if _BARE_ADDRESS.match(port):
        fail(
            BARE_ADDRESS,
            f"{port} is a network address, not a port name",
            f"write it as a pyserial URL: --port socket://{port}",
        )
    if port != "auto":
        return port
    found = list_serial_ports() if candidates is None else candidates
    if not found:
        fail(
            NO_PORT,
            "no USB serial port found for --port auto",
            "plug the unit's USB cable in (bedside-host devices lists ports) or pass --port",
        )
    if len(found) == 1:
        return found[0].device
    if not sys.stdin.isatty():
        names = ", ".join(p.device for p in found)
        fail(AMBIGUOUS_PORT, f"several serial ports could be the unit: {names}", "pass --port")
    import click

    for number, p in enumerate(found, 1):
        click.echo(
            f"  {number}) {p.device}  {p.usb_id}  {p.product or p.description}  "
            f"serial {p.serial_number or '-'}",
            err=True,
        )
    choice = click.prompt("which one is the unit", type=click.IntRange(1, len(found)), err=True)
    return found[choice - 1].device
