"""The real hardware behind :class:`~.sensor.Sensor`: machine.ADC, machine.UART, machine.Timer.

The defaults fit a Raspberry Pi Pico (RP2040): the sensor's amplifier on GP26 (ADC0), UART0
on GP0 (TX) / GP1 (RX) to the unit's serial port at 115200 baud. Other boards pass their
own pins (docs/hardware-engineer.md). Only this module imports ``machine``.
"""

BAUDRATE = 115200  # 1000 Hz needs 208 bytes every 0.1 s: 21 kbit/s, a fifth of the line


class Board:
    """ADC, UART, timer and unique id of a MicroPython board."""

    def __init__(self, adc_pin=26, uart_id=0, tx_pin=0, rx_pin=1, baudrate=BAUDRATE, timer_id=-1):
        import machine

        self._machine = machine
        self.adc = machine.ADC(machine.Pin(adc_pin))
        self.uart = machine.UART(
            uart_id,
            baudrate=baudrate,
            tx=machine.Pin(tx_pin),
            rx=machine.Pin(rx_pin),
            txbuf=1024,
            rxbuf=256,
        )
        # -1: a virtual (soft) timer where the port has one; its callback runs as a scheduled
        # task, which the sampling path is written for as well as for a hard IRQ.
        self.timer = machine.Timer(timer_id)

    def unique_id(self):
        return self._machine.unique_id()

    def idle(self):
        self._machine.idle()
