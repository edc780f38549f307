"""The release key a unit checks bundles with: provisioned over the link (``keys
provision``), or at a virtual unit's start (``sim --release-key``, by default the laptop's
own) (issue 17, item 1). A new unit takes it; replacing it needs the pairing window."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge.link.auth import PublicKey
from host_tools.cli import main
from host_tools.keys import ReleaseKey

sys.path.insert(0, str(Path(__file__).parent))
from bundle_kit import build  # noqa: E402


def unit_release_key(unit) -> PublicKey | None:
    path = unit.state / "keys" / "release.pub"
    return PublicKey.parse(path.read_text()) if path.exists() else None


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_new_unit_refuses_bundles_until_provisioned(tmp_path, paired_unit, keys_dir, capsys):
    unit, _ = paired_unit
    (unit.state / "keys" / "release.pub").unlink(missing_ok=True)  # a unit fresh from the box
    key = ReleaseKey.generate(keys_dir, name="release")
    bundle = build(tmp_path / "b.bundle", key)
    code, _, err = cli(capsys, "flash", str(bundle), "-p", unit.url, "--no-boot")
    assert code == 1 and err.startswith("error E348: ")
    assert "bedside-host keys provision --port" in err  # the hint names the command
    code, out, err = cli(capsys, "keys", "provision", "-p", unit.url, "--json")
    assert code == 0, err
    reply = json.loads(out)
    assert reply["installed"] is True and reply["replaced"] is None
    assert reply["fingerprint"] == key.public.fingerprint
    assert unit_release_key(unit).raw == key.public_raw
    code, out, err = cli(capsys, "flash", str(bundle), "-p", unit.url, "--no-boot", "--json")
    assert code == 0, err
    assert json.loads(out)["outcome"] == "trial pending"
    code, out, _ = cli(capsys, "keys", "provision", "-p", unit.url)  # again: nothing changes
    assert code == 0 and out.endswith("already installed\n")


def test_replacing_the_release_key_needs_the_pairing_window(paired_unit, keys_dir, capsys):
    unit, _ = paired_unit
    first = ReleaseKey.generate(keys_dir, name="release")
    assert cli(capsys, "keys", "provision", "-p", unit.url)[0] == 0
    other = ReleaseKey.generate(keys_dir, name="other", force=True)
    code, _, err = cli(capsys, "keys", "provision", "-p", unit.url)
    assert code == 1 and err.startswith("error E386: ") and err.count("\n") == 1
    assert first.public.fingerprint in err and "pairing button" in err
    assert unit_release_key(unit).raw == first.public_raw  # unchanged
    unit.open_pairing()  # physical access
    code, out, err = cli(capsys, "keys", "provision", "-p", unit.url, "--json")
    assert code == 0, err
    assert json.loads(out)["replaced"] == first.public.fingerprint
    assert unit_release_key(unit).raw == other.public_raw
    assert not (unit.state / "pairing").exists()  # one replacement per press


def test_an_unpaired_host_cannot_provision(unit, keys_dir, host_key, capsys):
    ReleaseKey.generate(keys_dir, name="release")
    (unit.state / "pairing").unlink(missing_ok=True)
    code, _, err = cli(capsys, "keys", "provision", "-p", unit.url)
    assert code == 1 and err.startswith("error E321: ")
    assert unit_release_key(unit) is None


def test_sim_takes_the_laptops_release_key_or_the_one_given(start_unit, keys_dir, tmp_path):
    mine = ReleaseKey.generate(keys_dir, name="mine")  # $BEDSIDE_KEYS: this laptop's keys
    unit = start_unit()
    assert unit_release_key(unit).raw == mine.public_raw
    given = ReleaseKey.generate(tmp_path / "elsewhere", name="given")
    other = start_unit(extra=["--release-key", str(tmp_path / "elsewhere" / "release.pub")])
    assert unit_release_key(other).raw == given.public_raw


def test_sim_without_any_release_key_installs_none(start_unit, keys_dir):
    unit = start_unit()
    assert unit_release_key(unit) is None


def test_sim_refuses_a_release_key_file_that_is_not_one(tmp_path, capsys):
    bad = tmp_path / "release.pub"
    bad.write_text("not a key\n")
    code, _, err = cli(capsys, "sim", "--state", str(tmp_path / "u"), "--release-key", str(bad))
    assert code == 1 and err.startswith("error E326: ")
    code, _, err = cli(capsys, "sim", "--release-key", str(tmp_path / "none"), "--json")
    assert code == 1 and json.loads(err)["error"]["code"] == "E324"
    assert not (tmp_path / "u").exists()  # refused before the unit was made
