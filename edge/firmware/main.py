"""Entry point on the sensor MCU: copied to the board's root as ``main.py``, it runs at boot.

The firmware package itself sits on the board as ``/lib/sensorfw`` (see
docs/hardware-engineer.md for the mpremote commands). The sensor stays stopped until the unit
sends start.
"""


def main():
    from sensorfw.board import Board
    from sensorfw.sensor import Sensor

    Sensor(Board()).run()


if __name__ == "__main__":
    main()
