"""What every ``bedside-host`` command shares: options, connecting, output, progress, errors.

A command module (flash, logs...) builds its click command from these::

    @click.command(epilog="example: bedside-host status --port auto")
    @port_option
    @keys_option
    @trace_option
    @json_option
    def status(port, keys, trace, as_json): ...
        with connect(port, keys=keys, trace=trace) as unit: ...
        emit({"device_id": ...}, as_json, text="...")
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from edge.errors import BedsideError
from edge.link import Client

from .devices import resolve_port
from .keys import HostKey, KnownUnits, default_keys_dir

__all__ = [
    "PORT_ENV",
    "Progress",
    "connect",
    "emit",
    "error_record",
    "global_port_option",
    "json_option",
    "json_requested",
    "keys_option",
    "port_option",
    "progress",
    "report_error",
    "timeout_option",
    "trace_option",
]

#: The environment variable that names the port when no -p/--port is given.
PORT_ENV = "BEDSIDE_PORT"
# Shared between a command and the group above it (click shares ``ctx.meta`` down the chain).
_PORT_META = "bedside_host.port"
_JSON_META = "bedside_host.json"
_PORT_HELP = (
    "the unit's port: a device path, a pyserial URL (socket://HOST:PORT, loop://) or 'auto'"
)


def _remember_group_port(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_PORT_META] = value


def _command_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """The command's own -p/--port, else one given before the command, else $BEDSIDE_PORT,
    else auto: the precedence of esptool and mpremote."""
    return value or ctx.meta.get(_PORT_META) or os.environ.get(PORT_ENV) or "auto"


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[_JSON_META] = value  # so that an error of this command is printed as JSON too
    return value


def json_requested(ctx: click.Context | None) -> bool:
    """True when the command being run was given ``--json``."""
    return bool(ctx is not None and ctx.meta.get(_JSON_META))


port_option = click.option(
    "-p",
    "--port",
    default=None,
    callback=_command_port,
    help=f"{_PORT_HELP}; default: -p before the command, ${PORT_ENV}, else auto",
)
#: ``bedside-host -p PORT COMMAND``: the port for whichever command follows.
global_port_option = click.option(
    "-p",
    "--port",
    default=None,
    expose_value=False,
    is_eager=True,
    callback=_remember_group_port,
    help=f"{_PORT_HELP}, for the command that follows (or ${PORT_ENV})",
)
keys_option = click.option(
    "--keys",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="keys directory (default $BEDSIDE_KEYS or ~/.config/bedside-host/keys)",
)
trace_option = click.option(
    "--trace", is_flag=True, help="print a hexdump of every frame on the link (stderr)"
)
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_remember_json,
    help="print the result as one JSON object (an error too: one JSON object on stderr)",
)
timeout_option = click.option(
    "--timeout", type=float, default=2.0, show_default=True, help="seconds of silence per try"
)


@contextlib.contextmanager
def connect(
    port: str,
    *,
    keys: Path | None = None,
    trace: bool = False,
    authenticate: bool = True,
    timeout_s: float = 2.0,
    retries: int = 3,
    baudrate: int = 921600,
) -> Iterator[Client]:
    """Open the unit on ``port`` ('auto' picks it), authenticated with the host key; the
    unit's own key is checked against (or pinned in) the keys folder's known_units."""
    url = resolve_port(port)
    client = Client.open(
        url,
        timeout_s=timeout_s,
        retries=retries,
        trace=sys.stderr if trace else None,
        baudrate=baudrate,
    )
    try:
        if authenticate:
            keys_dir = keys or default_keys_dir()
            client.authenticate(HostKey.load(keys_dir), unit_keys=KnownUnits(keys_dir))
        yield client
    finally:
        client.close()


def emit(result: dict[str, Any], as_json: bool, text: str | None = None) -> None:
    """Print a command's result: one JSON object, or ``text`` (default: key: value lines)."""
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    if text is None:
        text = "\n".join(f"{k}: {v}" for k, v in result.items())
    click.echo(text)


def error_record(error: BedsideError) -> dict[str, dict[str, str]]:
    """``{"error": {"code", "message", "hint"}}``: what happened and what to do, apart."""
    message, _, hint = str(error).partition(" — ")
    return {"error": {"code": error.code, "message": message, "hint": hint}}


def report_error(error: BedsideError, as_json: bool) -> None:
    """Print ``error`` on stderr: the line ``error E<code>: what — what to do``, or with
    ``as_json`` the same as one JSON object (:func:`error_record`) on one line."""
    if as_json:
        click.echo(json.dumps(error_record(error)), err=True)
    else:
        click.echo(f"error {error.code}: {error}", err=True)


class Progress:
    """A progress bar on stderr with speed and ETA (rich); silent when disabled (``--json``)."""

    def __init__(self, total: int | None, label: str, *, enabled: bool = True, unit: str = "B"):
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as RichProgress

            amount = DownloadColumn() if unit == "B" else MofNCompleteColumn()
            self._bar = RichProgress(
                "[progress.description]{task.description}",
                BarColumn(),
                TaskProgressColumn(),
                amount,
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task(label, total=total)
            self._bar.start()

    def update(self, n: int) -> None:
        """Count ``n`` more units done."""
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def set_total(self, total: int | None) -> None:
        """The work ahead grew (or became known): the bar's total, so it never shows more
        than 100 %."""
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    @property
    def total(self) -> float | None:
        """The bar's total (None when disabled or not known)."""
        return None if self._bar is None else self._bar.tasks[0].total

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int | None, label: str, *, enabled: bool = True, unit: str = "B") -> Progress:
    """A :class:`Progress` bar (speed and ETA)."""
    return Progress(total, label, enabled=enabled, unit=unit)
