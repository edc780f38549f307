"""MicroPython firmware of the sensor MCU: samples the ADC, frames the samples, answers commands.

Installed on the board as the package ``sensorfw`` (docs/hardware-engineer.md), imported on
the unit as :mod:`edge.firmware`: :mod:`.protocol` is the frame format shared by both sides,
:mod:`.sensor` the sampling and command logic, :mod:`.board` the real hardware and
:mod:`.fake` a fake ADC, UART and timer for tests and virtual sensors.
"""

FIRMWARE_VERSION = "1.0.0"
