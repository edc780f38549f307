"""Security tests that docs/security.md names and the host and edge suites do not hold:
no key material in anything an end-to-end run prints or writes, a revoked (stolen) laptop
is refused, rows already archived stay as they were pulled when the unit's store is
tampered with afterwards."""

from __future__ import annotations

import base64
import csv
import importlib.util
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parents[2]
HOST_TESTS = ROOT / "tests" / "host"
sys.path.insert(0, str(HOST_TESTS))
from bundle_kit import install_release_key  # noqa: E402
from logs_fixtures import connect, record  # noqa: E402

from edge.errors import BedsideError  # noqa: E402
from edge.link import Client  # noqa: E402
from host_tools.archive import Archive, unit_archives  # noqa: E402
from host_tools.keys import HostKey, ReleaseKey  # noqa: E402
from host_tools.logs import pull  # noqa: E402


def _host_conftest():
    """tests/host/conftest.py as a module: its UnitProcess runs the virtual unit."""
    spec = importlib.util.spec_from_file_location("host_conftest", HOST_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


UnitProcess = _host_conftest().UnitProcess
PERSON = "P017-Jane-Doe"


def forms(secret: bytes) -> list[bytes]:
    """The ways a secret could show up in text or bytes: raw, hex, base64 (and parts of
    them long enough that a match is no accident)."""
    out = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        out.append(enc(secret).rstrip(b"="))
    # Any 16-byte window of the raw secret, hex-encoded: a truncated dump still leaks; and
    # any 8 bytes as --trace's hexdump prints them ("3f a0 ...").
    out += [secret[i : i + 16].hex().encode() for i in range(0, len(secret) - 15, 8)]
    out += [secret[i : i + 8].hex(" ").encode() for i in range(len(secret) - 7)]
    return out


def private_forms(key_file: Path) -> list[bytes]:
    """Every form of a PEM private key file's secret: the raw 32 bytes, the DER, the PEM
    body lines."""
    pem = key_file.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    return forms(raw) + forms(der) + body


def cli(env: dict, *argv: str, ok: bool = True) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "host_tools", *argv], cwd=ROOT, env=env, capture_output=True
    )
    if ok:
        assert done.returncode == 0, done.stderr.decode()
    else:
        last = (done.stderr.strip().splitlines() or [b""])[-1]
        # one error line: plain text, or under --json one JSON object with the code
        assert done.returncode != 0, done.stderr
        assert last.startswith((b"error E", b'{"error": {"code": "E')), done.stderr
    return done.stdout + done.stderr


def files_under(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not any(p.is_relative_to(s) for s in skip)
    }


def test_no_key_material_in_any_output_log_archive_or_export(tmp_path):
    """Pair, build and flash a bundle, pull, export, a traced status, and three failures:
    every byte printed or written outside the keys folders is searched for the host key,
    the release key and the pseudonym key; the export holds no device id or participant."""
    keys, release = tmp_path / "keys", tmp_path / "release-keys"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEDSIDE_KEYS": str(keys)}
    outputs: dict[str, bytes] = {}
    outputs["keys init"] = cli(env, "keys", "init", "--name", "laptop-1")
    outputs["release init"] = cli(env, "keys", "init", "--release", "--keys", str(release))
    unit = UnitProcess(tmp_path / "unit", sensor=True, extra=("--speed", "max")).start()
    try:
        port = ("--port", unit.url)
        outputs["authorize"] = cli(env, "keys", "authorize", *port)
        install_release_key(unit.state, ReleaseKey.load(release))
        bundle = tmp_path / "b.bundle"
        outputs["bundle"] = cli(
            env, "bundle", "build", "--version", "0.2.0", "--out", str(bundle),
            "--hardware", "sim", "--keys", str(release), "--json",
        )  # fmt: skip
        outputs["flash"] = cli(env, "flash", str(bundle), *port, "--json")
        outputs["status"] = cli(env, "status", *port, "--json", "--trace")
        archive, export = tmp_path / "archive", tmp_path / "export"
        pull_args = ("--archive", str(archive), "--person", PERSON, "--json")
        outputs["pull"] = cli(env, "logs", "pull", *port, *pull_args, "--trace")
        outputs["export"] = cli(
            env, "logs", "export", "--archive", str(archive), "--out", str(export)
        )
        # Failures print their one line: none may carry a key.
        tampered = tmp_path / "tampered.bundle"
        tampered.write_bytes(bundle.read_bytes()[:-100])
        outputs["bad flash"] = cli(env, "flash", str(tampered), *port, ok=False)
        other = {**env, "BEDSIDE_KEYS": str(tmp_path / "stranger")}
        cli(other, "keys", "init")
        outputs["stranger"] = cli(other, "logs", "pull", *port, *pull_args, ok=False)
        (keys / "host_key").chmod(0o644)
        # refuses to use it: E325, and status exits 1 (it cannot log in)
        outputs["unsafe key"] = cli(env, "status", *port, "--json", ok=False)
        assert b"E325" in outputs["unsafe key"]
        (keys / "host_key").chmod(0o600)
    finally:
        unit.stop()
        outputs["unit stderr"] = unit.proc.stderr.read().encode()
        outputs["unit stdout"] = unit.proc.stdout.read().encode()
        unit.proc.stdout.close()
        unit.proc.stderr.close()
    export_key = archive / "export.key"
    outputs |= files_under(unit.state / "logs")
    outputs |= files_under(archive, skip=(export_key,))
    outputs |= files_under(export)
    assert b"epochs" in outputs["pull"] and (export / "epochs.csv").stat().st_size > 1000
    outputs[str(bundle)] = bundle.read_bytes()
    outputs[str(unit.state / "vitals.db")] = (unit.state / "vitals.db").read_bytes()
    assert len(outputs) > 15 and any("runtime.log" in name for name in outputs)

    secrets = {
        "host key": private_forms(keys / "host_key"),
        "release key": private_forms(release / "release_key"),
        "stranger's key": private_forms(tmp_path / "stranger" / "host_key"),
        "pseudonym key": forms(export_key.read_bytes()),
    }
    # The patterns do find a key where it is (its own file, a hexdump of it).
    from edge.link.frame import hexdump

    raw_forms = secrets["host key"]
    assert any(p in (keys / "host_key").read_bytes() for p in raw_forms)
    raw = serialization.load_pem_private_key((keys / "host_key").read_bytes(), None)
    raw = raw.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert any(p in hexdump(b"\x01" * 5 + raw).encode() for p in raw_forms)
    leaks = [
        f"{what} in {where}"
        for where, data in outputs.items()
        for what, patterns in secrets.items()
        if any(p in data for p in patterns)
    ]
    assert leaks == []

    # The export: pseudonyms only, no participant code, device id or source path.
    device_id = unit.device_id.encode()
    for path, data in files_under(export).items():
        assert PERSON.encode() not in data and device_id not in data, path
    with open(export / "sessions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["device"].startswith("u_") for r in rows)
    assert {r["source_kind"] for r in rows} == {"sim"}  # a kind, never a port or a path
    assert {r["person"][:2] for r in rows} == {"p_"}


@pytest.fixture
def paired(tmp_path):
    unit = UnitProcess(tmp_path / "unit").start()
    key = HostKey.generate(tmp_path / "keys", name="laptop-1")
    with Client.open(unit.url) as client:
        client.authorize(key, key.name)
    yield unit, key
    unit.stop()
    unit.proc.stdout.close()
    unit.proc.stderr.close()


def test_a_stolen_laptops_key_is_refused_once_its_line_is_deleted(paired):
    unit, key = paired
    with connect(unit.url, key):
        pass  # paired: it authenticates
    # The operator revokes the laptop: its line goes from the unit's authorized_hosts.
    hosts = unit.state / "keys" / "authorized_hosts"
    mine = key.public.line().split()[1]
    kept = [line for line in hosts.read_text().splitlines() if mine not in line]
    hosts.write_text("".join(line + "\n" for line in kept))
    with pytest.raises(BedsideError) as err:
        connect(unit.url, key)
    assert err.value.code.startswith("E3")


def test_rows_archived_stay_as_pulled_when_the_unit_is_tampered_with_later(paired, tmp_path):
    unit, key = paired
    record(unit.state, 300, seed=5)
    archive = tmp_path / "archive"
    with connect(unit.url, key) as client:
        pull(client, archive)
    (path,) = unit_archives(archive)
    with Archive.open(path) as a:
        before = list(a.rows("epochs"))
    # Someone with a shell on the unit rewrites the night's heart rates.
    with sqlite3.connect(unit.state / "vitals.db") as conn:
        conn.execute("UPDATE epochs SET hr_bpm = 200.0 WHERE hr_bpm IS NOT NULL")
    conn.close()
    with connect(unit.url, key) as client:
        again = pull(client, archive)
    assert again.nothing_new
    with Archive.open(path) as a:
        assert list(a.rows("epochs")) == before
