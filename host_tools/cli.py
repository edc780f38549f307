"""``bedside-host``: the laptop's command line for units (also ``python -m host_tools``).

    bedside-host keys init                          # this laptop's host key, once
    bedside-host sim --state /tmp/unit --pairing    # a virtual unit; prints its URL
    bedside-host keys authorize --port socket://127.0.0.1:7000
    bedside-host status --port auto

Every failure prints one line, ``error E<code>: what happened — what to do``, and exits 1
(2 for a command line that cannot be parsed). Codes: docs/errors.md.

Command modules add their commands at the bottom of this file (``cli.add_command``) and
status sections with :data:`STATUS_SECTIONS`.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import click

from edge.errors import BedsideError
from edge.link import Client, Command, LinkError
from edge.link.codes import BAD_KEY_FILE, NO_KEY, UNIT_KEY_CHANGED

from .devices import list_serial_ports, resolve_port
from .keys import (
    RELEASE_PUB,
    HostKey,
    KnownUnits,
    ReleaseKey,
    default_keys_dir,
    read_public_key,
    release_public_key,
)
from .ui import (
    connect,
    emit,
    global_port_option,
    json_option,
    json_requested,
    keys_option,
    port_option,
    report_error,
    trace_option,
)

__all__ = ["STATUS_SECTIONS", "cli", "main"]

USAGE = "E382"

#: Extra parts of ``status`` on an authenticated link: ``name -> section(client) -> dict``
#: (flashing adds the slots).
#: Sections of ``status`` for an authenticated host: name -> (fetch from the unit, text lines).
STATUS_SECTIONS: dict[str, tuple[Callable[[Client], dict], Callable[[dict], str]]] = {}


#: Login failures that make ``status`` exit 1 (see :func:`status`).
STATUS_FAILURES = frozenset({NO_KEY, BAD_KEY_FILE, UNIT_KEY_CHANGED})
#: The unit's runtime states that make ``status`` exit 1: it answers but records nothing.
RUNTIME_FAILURES = frozenset({"stopped", "not responding"})


class _Group(click.Group):
    """The click group: usage errors as one ``error E382`` line, and a command's
    BedsideError as its one line, or one JSON object when the command was given --json."""

    def main(self, args=None, *rest, **kwargs):
        kwargs["standalone_mode"] = False
        # A command line that does not parse has no parsed --json: the word decides.
        as_json = "--json" in (sys.argv[1:] if args is None else args)
        try:
            return super().main(args, *rest, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            return 0
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "bedside-host"
            message = exc.format_message().rstrip(".")
            report_error(BedsideError(USAGE, f"{message} — see {where} --help"), as_json)
            sys.exit(2)
        except click.exceptions.Abort:
            aborted = BedsideError(USAGE, "aborted — nothing was changed by this step")
            report_error(aborted, as_json)
            sys.exit(1)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BedsideError as exc:
            # ctx.meta is shared with the command's context: its --json is known here.
            report_error(exc, json_requested(ctx))
            sys.exit(1)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="examples:\n\n  bedside-host status --port socket://127.0.0.1:7000\n\n"
    "  bedside-host -p /dev/ttyACM0 status    (-p before the command, as esptool)",
)
@global_port_option
@click.version_option(package_name="bedside-bcg", message="bedside-host %(version)s")
def cli() -> None:
    """Maintain bedside BCG units: pair, status, flash, pull logs, simulate a unit."""


# --- keys --------------------------------------------------------------------------------


@cli.group(epilog="example: bedside-host keys init && bedside-host keys authorize --port auto")
def keys() -> None:
    """This laptop's keys: the host key (pairing, login) and release keys (signing)."""


@keys.command(
    "init",
    epilog="examples:\n\n  bedside-host keys init\n\n"
    "  bedside-host keys init --release --keys ~/release-keys",
)
@keys_option
@click.option("--name", help="a name for the key, shown on units (default user@hostname)")
@click.option("--release", is_flag=True, help="make a release (bundle signing) key instead")
@click.option("--force", is_flag=True, help="replace an existing key (paired units refuse it)")
@json_option
def keys_init(keys: Path | None, name: str | None, release: bool, force: bool, as_json: bool):
    """Make an Ed25519 key (private part mode 0600) and print its public key."""
    kind = ReleaseKey if release else HostKey
    key = kind.generate(keys or default_keys_dir(), name=name, force=force)
    result = {
        "kind": "release" if release else "host",
        "path": str(key.path),
        "public_key": key.public.line(),
        "fingerprint": key.public.fingerprint,
    }
    emit(result, as_json, f"{result['kind']} key {key.path}\n{key.public.line()}")


@keys.command("show", epilog="example: bedside-host keys show --json")
@keys_option
@click.option("--release", is_flag=True, help="the release key instead of the host key")
@json_option
def keys_show(keys: Path | None, release: bool, as_json: bool):
    """Print the public key (to add to a unit's authorized_hosts by hand, or release.pub)."""
    key = (ReleaseKey if release else HostKey).load(keys or default_keys_dir())
    emit(
        {"public_key": key.public.line(), "fingerprint": key.public.fingerprint},
        as_json,
        key.public.line(),
    )


@keys.command(
    "authorize",
    epilog="example (pairing window open on the unit):\n\n"
    "  bedside-host keys authorize --port /dev/ttyACM0",
)
@port_option
@keys_option
@click.option("--name", help="the name the unit records (default the key's name)")
@trace_option
@json_option
def keys_authorize(port: str, keys: Path | None, name: str | None, trace: bool, as_json: bool):
    """Install this host's public key on a unit (pairing).

    The first pairing needs physical access: press the unit's pairing button (or create
    DIR/pairing on it) and run this within 10 minutes. A host already paired can authorize
    itself again at any time."""
    keys_dir = keys or default_keys_dir()
    key = HostKey.load(keys_dir)
    with connect(port, trace=trace, authenticate=False) as unit:
        device = unit.device_id
        # Pairing is with the unit in hand: the moment to pin the key it proves itself with.
        reply = unit.authorize(key, name or key.name, unit_keys=KnownUnits(keys_dir))
    result = {"device_id": device, "fingerprint": reply.get("fingerprint"), **reply}
    already = "" if reply.get("added") else " (it was already authorized)"
    emit(
        result, as_json, f"{device}: this host is authorized{already}, key {key.public.fingerprint}"
    )


@keys.command(
    "provision",
    epilog="example (the laptop that signs bundles, paired with the unit):\n\n"
    "  bedside-host keys provision --port /dev/ttyACM0",
)
@port_option
@keys_option
@trace_option
@json_option
def keys_provision(port: str, keys: Path | None, trace: bool, as_json: bool):
    """Install this laptop's release public key on a unit: the key it checks bundles with.

    A unit without a release key (a new one) takes it from any paired laptop. Replacing
    the key a unit already trusts needs physical access, as pairing does: press its pairing
    button (or touch DIR/pairing on it) and run this within 10 minutes (else E386)."""
    keys_dir = keys or default_keys_dir()
    release = release_public_key(keys_dir)
    with connect(port, keys=keys_dir, trace=trace) as unit:
        reply, _ = unit.call(Command.RELEASE_KEY, {"public_key": release.line()})
        device = unit.device_id
    result = {"device_id": device, **reply}
    done = "installed" if reply["installed"] else "already installed"
    replaced = f" (it replaces {reply['replaced']})" if reply.get("replaced") else ""
    emit(result, as_json, f"{device}: release key {reply['fingerprint']} {done}{replaced}")


# --- devices and status -------------------------------------------------------------------


@cli.command(epilog="example: bedside-host devices --json")
@click.option("--all", "show_all", is_flag=True, help="also ports without a USB id (ttyS*)")
@json_option
def devices(show_all: bool, as_json: bool):
    """List serial ports with their USB ids and serial numbers (candidates for --port auto)."""
    ports = list_serial_ports(include_non_usb=show_all)
    if as_json:
        click.echo(json.dumps({"ports": [p.as_dict() for p in ports]}))
        return
    if not ports:
        click.echo("no USB serial ports (plug the unit in; --all lists built-in ports too)")
        return
    for p in ports:
        click.echo(
            f"{p.device:<16} {p.usb_id or '-':<10} serial {p.serial_number or '-':<16} "
            f"{p.manufacturer or ''} {p.product or p.description}".rstrip()
        )


@cli.command(
    epilog="examples:\n\n  bedside-host monitor -p /dev/ttyUSB0 --fs 250\n\n"
    "  bedside-host monitor -p socket://127.0.0.1:5555 --raw --seconds 60 > bench.csv",
)
@port_option
@click.option("--fs", type=int, default=250, show_default=True, help="sampling rate, 50..1000 Hz")
@click.option("--seconds", type=float, default=None, help="stop after this long (else Ctrl-C)")
@click.option("--raw", is_flag=True, help="every sample as CSV (replays with bedside run)")
@json_option
def monitor(port: str, fs: int, seconds: float | None, raw: bool, as_json: bool) -> None:
    """Watch the sensor's raw signal: one line a second (rate, ADC range, link counters).

    The port is the sensor MCU's serial line (a USB-UART cable on its UART, or the virtual
    sensor's socket://), not the unit's maintenance port."""
    from edge.sources.monitor import watch

    watch(resolve_port(port), fs=fs, seconds=seconds, raw=raw, as_json=as_json)


@cli.command(epilog="example: bedside-host status --port socket://127.0.0.1:7000 --json")
@port_option
@keys_option
@trace_option
@json_option
def status(port: str, keys: Path | None, trace: bool, as_json: bool) -> int:
    """What the unit is (identify) and, once authenticated, its state (slots...).

    Exit status 0 when authenticated, or refused only because this host is not (yet)
    authorized (E321: a unit before pairing); 1, with the error's line on stderr, when this
    laptop cannot log in at all (no or an unusable host key), the unit proved itself with
    another key than the one pinned for it, or its runtime has stopped or hangs (E392,
    E393): a script must not read those as a healthy unit."""
    sections: list[str] = []
    failed: BedsideError | None = None
    with connect(port, trace=trace, authenticate=False) as unit:
        result = unit.identify()
        try:
            keys_dir = keys or default_keys_dir()
            unit.authenticate(HostKey.load(keys_dir), unit_keys=KnownUnits(keys_dir))
        except BedsideError as exc:
            if isinstance(exc, LinkError):
                raise
            result["authentication"] = f"error {exc.code}: {exc}"
            failed = exc if exc.code in STATUS_FAILURES else None
        else:
            result["authenticated"] = True
            for name, (fetch, format_text) in STATUS_SECTIONS.items():
                result[name] = fetch(unit)
                sections.append(f"{name}:\n" + textwrap.indent(format_text(result[name]), "  "))
    identity = "\n".join(f"{k}: {v}" for k, v in result.items() if k not in STATUS_SECTIONS)
    emit(result, as_json, text="\n".join([identity, *sections]))
    if failed is None and result.get("runtime_state") in RUNTIME_FAILURES:
        # the unit answers, but records nothing: E392 stopped, E393 not responding
        code, _, message = str(result.get("runtime", "")).removeprefix("error ").partition(": ")
        failed = BedsideError(code, message)
    if failed is None:
        return 0
    report_error(failed, as_json)  # the one line (or JSON object) scripts look for
    return 1


# --- the virtual unit -------------------------------------------------------------------------


@cli.command(
    epilog="examples:\n\n  bedside-host sim --state /tmp/unit --pairing\n\n"
    "  bedside-host sim --state /tmp/unit --listen 127.0.0.1:7000 --speed 60x",
)
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bedside-sim"),
    show_default=True,
    help="the virtual unit's state directory (its disk)",
)
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT to serve on")
@click.option("--seed", type=int, default=1, show_default=True, help="the simulated night")
@click.option("--speed", default="realtime", show_default=True, help="sensor speed, e.g. 60x")
@click.option("--no-sensor", is_flag=True, help="the agent only: no runtime, no vitals")
@click.option("--pairing", is_flag=True, help="open the pairing window (its button, pressed)")
@click.option(
    "--release-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the release public key the unit trusts (a release.pub file; default: this "
    "laptop's, KEYS/release.pub, when there is one)",
)
@keys_option
@trace_option
@json_option
def sim(state, listen, seed, speed, no_sensor, pairing, release_key, keys, trace, as_json):
    """Run a virtual unit (the real agent and runtime on the simulated sensor); print its URL.

    The first line printed is the URL to pass as --port (with --json: {"url": ...}).
    At start it is provisioned with a release key, as a unit is in the factory: --release-key,
    or this laptop's own (bedside-host keys init --release), so that the bundles built here
    flash. Runs until Ctrl-C or SIGTERM."""
    from .virtual_unit import VirtualUnit

    if release_key is not None:
        trusted = read_public_key(release_key)
    elif (keys or default_keys_dir()).joinpath(RELEASE_PUB).exists():
        trusted = release_public_key(keys or default_keys_dir())
    else:
        trusted = None  # the unit refuses every bundle (E348) until one is provisioned
    unit = VirtualUnit(
        state,
        listen=listen,
        seed=seed,
        speed=speed,
        sensor=not no_sensor,
        pairing=pairing,
        release_key=trusted,
        trace=sys.stderr if trace else None,
    )
    signal.signal(signal.SIGTERM, lambda *_: unit.stop())
    signal.signal(signal.SIGINT, lambda *_: unit.stop())
    result = {
        "url": unit.url,
        "state": str(state),
        "device_id": unit.agent.identity["device_id"],
        "release_key": trusted.fingerprint if trusted else None,
    }
    emit(result, as_json, unit.url)
    sys.stdout.flush()
    unit.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Run ``bedside-host``; returns the exit status."""
    try:
        result = cli.main(args=argv, prog_name="bedside-host")
    except BedsideError as exc:  # raised before any command ran (no --json known yet)
        report_error(exc, "--json" in (sys.argv[1:] if argv is None else argv))
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return result if isinstance(result, int) else 0


# --- flashing: bundles, flash, rollback, slots in status (host_tools/flash.py, bundle.py) --
from .bundle import cli as _bundle_cli  # noqa: E402
from .flash import flash_command, format_slots, rollback_command, slot_info  # noqa: E402

cli.add_command(_bundle_cli)
cli.add_command(flash_command)
cli.add_command(rollback_command)
STATUS_SECTIONS["slots"] = (slot_info, format_slots)

# --- logs: pull, export, query (host_tools/logs.py, archive.py, export.py, dataset.py) -------
from .logs import logs_group as _logs_cli  # noqa: E402
from .logs import query_command  # noqa: E402

cli.add_command(_logs_cli)
cli.add_command(query_command)
