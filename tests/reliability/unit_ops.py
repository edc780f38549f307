"""One unit operation in a process of its own, cut at a chosen point (see cutpoints.py).

    python tests/reliability/unit_ops.py OPERATION --root DIR --kind fs|sql|ms --at N
        [--phase NAME] --witness FILE [operation arguments]

Operations (the unit's real code, through its public entry points):

- ``record --state S --seed K``: ``bedside run`` on the simulator at max speed into
  ``S/vitals.db``, small commit batches (phase ``record``);
- ``flash --state S --bundle B [--boot]``: the agent's flashing handlers
  (:class:`edge.maint.flash.Flasher`) upload B in 16 KiB chunks (phase ``upload``), verify
  and unpack it into the inactive slot and mark it for a trial (phase ``install``); with
  ``--boot`` the boot manager then runs the trial (phase ``boot``: health check, confirm);
- ``pull --state S --archive A --keys K``: the agent (a virtual unit, in a thread) serves a
  ``logs pull`` into the host archive A (phase ``pull``): unit and host die together.

Run by the power-cut harness (powercut.py); ``--at 0`` runs to the end, counting steps.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cutpoints  # noqa: E402

CHUNK = 16384
RECORD_MINUTES = 20
RECORD_CONFIG = """\
[run]
epoch_s = 5
[store]
commit_epochs = 8
"""


def record(cut: cutpoints.Cutter, args: argparse.Namespace) -> None:
    from edge.cli import main

    cutpoints.witness_store_commits()
    config = args.state / "bedside.toml"
    if not config.exists():  # the chain's first (uncut, counting) run writes it
        config.write_text(RECORD_CONFIG)
    cut.phase("record")
    code = main(
        [
            "run",
            *("--source", f"sim:{args.seed}", "--speed", "max"),
            *("--duration", f"{RECORD_MINUTES}m", "--config", str(config)),
            *("--db", str(args.state / "vitals.db"), "--quiet"),
        ]
    )
    if code != 0:
        raise SystemExit(f"bedside run exited {code}")
    cut.phase("done")


def flash(cut: cutpoints.Cutter, args: argparse.Namespace) -> None:
    from edge.maint import boot
    from edge.maint import bundle as bundles
    from edge.maint.flash import Flasher

    data = args.bundle.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    raw, signature = bundles.read_manifest(args.bundle)
    flasher = Flasher(args.state, hardware="sim", factory_version="0.1.0")
    cut.phase("upload")
    begin = {"sha256": sha, "size": len(data), "signature": signature.hex()}
    reply, _ = flasher.begin(begin, zlib.compress(raw))
    for offset in range(reply["offset"], len(data), CHUNK):
        flasher.chunk({"sha256": sha, "offset": offset}, data[offset : offset + CHUNK])
    cut.phase("install")
    flasher.finish({"sha256": sha}, b"")
    if args.boot:
        cut.phase("boot")
        boot.boot(args.state, source="sim:1")
    cut.phase("done")


def pull(cut: cutpoints.Cutter, args: argparse.Namespace) -> None:
    from edge.link import Client
    from host_tools.keys import HostKey
    from host_tools.logs import pull as pull_logs
    from host_tools.virtual_unit import VirtualUnit

    unit = VirtualUnit(args.state, sensor=False)
    unit.serve_in_thread()
    key = HostKey.load(args.keys)
    with Client.open(unit.url, timeout_s=2.0, retries=2) as client:
        client.authenticate(key)
        cut.phase("pull")
        pull_logs(client, args.archive, page_bytes=4096)
    cut.phase("done")
    unit.stop()


OPERATIONS = {"record": record, "flash": flash, "pull": pull}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=sorted(OPERATIONS))
    parser.add_argument("--root", type=Path, required=True, help="steps count under here")
    parser.add_argument("--kind", default="fs", choices=("fs", "sql", "ms"))
    parser.add_argument("--at", type=int, default=0)
    parser.add_argument("--phase", default="", help="ms: the phase the delay counts from")
    parser.add_argument("--witness", type=Path)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--boot", action="store_true")
    parser.add_argument("--archive", type=Path)
    parser.add_argument("--keys", type=Path)
    args = parser.parse_args()
    cut = cutpoints.install(args.root, args.kind, args.at, args.witness, args.phase)
    cutpoints.arm()
    OPERATIONS[args.operation](cut, args)


if __name__ == "__main__":
    main()
