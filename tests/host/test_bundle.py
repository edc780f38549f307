"""Bundles: build, sign, verify, unpack; every hostile bundle refused with the slot untouched."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import BedsideError
from edge.maint import bundle as bundles
from host_tools.bundle import bundle_files, default_root

sys.path.insert(0, str(Path(__file__).parent))
from bundle_kit import build, craft, member, release_key, tree_digest  # noqa: E402

FILES = {"edge/__init__.py": b"VERSION = 2\n", "models/m.bin": bytes(range(256)) * 4}


@pytest.fixture
def key(tmp_path):
    return release_key(tmp_path / "keys")


@pytest.fixture
def slot(tmp_path) -> Path:
    """A slot holding an older bundle: a refusal must leave exactly this."""
    path = tmp_path / "slots" / "b"
    path.mkdir(parents=True)
    (path / "old.py").write_text("old = True\n")
    return path


def expect_refused(code: str, bundle: Path, key, slot: Path, **check) -> BedsideError:
    before = tree_digest(slot.parent.parent)
    checker = (lambda m: bundles.check_install(m, **check)) if check else None
    with pytest.raises(BedsideError) as info:
        bundles.unpack(bundle, slot, key.public, check=checker)
    assert info.value.code == code, str(info.value)
    assert " — " in str(info.value)  # what happened — what to do
    assert tree_digest(slot.parent.parent) == before  # nothing written, nothing removed
    return info.value


def test_build_round_trip_of_the_project_tree(tmp_path, key, slot) -> None:
    bundle = build(tmp_path / "b.bundle", key)
    manifest = bundles.unpack(bundle, slot, key.public)
    packed = {p.as_posix() for p in bundle_files(default_root())}
    assert {f.path for f in manifest.files} == packed
    assert "edge/maint/boot.py" in packed and "dsp_c/src/sos.c" in packed
    assert "models/bcg_quality.tflite" in packed and "edge/firmware/sensor.py" in packed
    assert not any("__pycache__" in p or p.endswith((".so", ".o")) for p in packed)
    for entry in manifest.files:  # byte-identical to the tree
        assert (slot / entry.path).read_bytes() == (default_root() / entry.path).read_bytes()
    assert not (slot / "old.py").exists()  # the slot was replaced whole
    assert bundles.verify_tree(slot).version == "0.2.0"
    assert manifest.key == key.public.fingerprint


def test_head_is_readable_without_unpacking(tmp_path, key) -> None:
    bundle = build(tmp_path / "b.bundle", key, version="1.2.3", min_version="1.0")
    raw, signature = bundles.read_manifest(bundle)
    manifest = bundles.verify_manifest(raw, signature, key.public)
    assert (manifest.version, manifest.min_version, manifest.hardware) == ("1.2.3", "1.0", ("sim",))


def test_verify_only_writes_nothing(tmp_path, key) -> None:
    bundle = craft(tmp_path / "b.bundle", key, FILES)
    before = tree_digest(tmp_path)
    assert bundles.unpack(bundle, None, key.public).version == "0.2.0"
    assert tree_digest(tmp_path) == before


def test_honest_crafted_bundle_unpacks(tmp_path, key, slot) -> None:
    bundles.unpack(craft(tmp_path / "b.bundle", key, FILES), slot, key.public)
    assert (slot / "models/m.bin").read_bytes() == FILES["models/m.bin"]
    assert json.loads((slot / "manifest.json").read_bytes())["version"] == "0.2.0"


def test_wrong_key_is_refused(tmp_path, key, slot) -> None:
    other = release_key(tmp_path / "other-keys")
    bundle = craft(tmp_path / "b.bundle", other, FILES)
    error = expect_refused("E341", bundle, key, slot)
    assert other.public.fingerprint in str(error) and key.public.fingerprint in str(error)


def test_tampered_manifest_is_refused(tmp_path, key, slot) -> None:
    # Signed, then edited: a version bumped after signing.
    raw_ok = craft(tmp_path / "ok.bundle", key, FILES)
    raw, signature = bundles.read_manifest(raw_ok)
    bundle = craft(
        tmp_path / "b.bundle",
        key,
        FILES,
        signature=signature,
        manifest_edit=lambda r: r.replace(b'"0.2.0"', b'"9.9.9"'),
    )
    expect_refused("E341", bundle, key, slot)


def test_tampered_file_is_refused(tmp_path, key, slot) -> None:
    evil = {**FILES, "edge/__init__.py": b"import os; os.system('rm -rf /')\n"}
    payload = [member("payload/" + p, d) for p, d in evil.items()]
    # Same size, other bytes: only the hash can tell.
    payload[0] = member("payload/edge/__init__.py", b"VERSION = 3\n")
    expect_refused("E342", craft(tmp_path / "b.bundle", key, FILES, payload=payload), key, slot)
    payload[0] = member("payload/edge/__init__.py", b"VERSION = 33\n")
    expect_refused("E342", craft(tmp_path / "c.bundle", key, FILES, payload=payload), key, slot)


def test_truncated_bundle_is_refused(tmp_path, key, slot) -> None:
    full = build(tmp_path / "b.bundle", key).read_bytes()
    for cut in (10, len(full) // 3, len(full) - 9):
        path = tmp_path / f"cut{cut}.bundle"
        path.write_bytes(full[:cut])
        expect_refused("E340", path, key, slot)


def test_missing_and_extra_files_are_refused(tmp_path, key, slot) -> None:
    members = [member("payload/" + p, d) for p, d in FILES.items()]
    missing = craft(tmp_path / "m.bundle", key, FILES, payload=members[:1])
    expect_refused("E342", missing, key, slot)
    extra = craft(tmp_path / "e.bundle", key, FILES, payload=[*members, member("payload/x", b"")])
    expect_refused("E343", extra, key, slot)


@pytest.mark.parametrize(
    "path",
    ["../evil.py", "edge/../../evil.py", "/etc/evil", "edge//x.py", "./x.py", "a\\..\\b", "é.py"],
)
def test_escaping_paths_refused_even_when_signed(tmp_path, key, slot, path) -> None:
    files = {**FILES, path: b"pwned\n"}
    # The manifest check refuses them before the payload is read.
    bundle = craft(tmp_path / "b.bundle", key, files)
    expect_refused("E343", bundle, key, slot)
    assert not (tmp_path / "evil.py").exists() and not (slot.parent / "evil.py").exists()


@pytest.mark.parametrize(
    "bad",
    [
        member("payload/edge/__init__.py", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
        member("payload/edge/__init__.py", kind=tarfile.LNKTYPE, linkname="payload/models/m.bin"),
        member("payload/edge/__init__.py", kind=tarfile.CHRTYPE, devmajor=1, devminor=3),
        member("payload/edge/__init__.py", kind=tarfile.FIFOTYPE),
        member("payload/edge/__init__.py", kind=tarfile.DIRTYPE),
        member("payload/../../evil.py", b"VERSION = 2\n"),
        member("/abs/evil.py", b"VERSION = 2\n"),
    ],
    ids=["symlink", "hardlink", "device", "fifo", "dir", "climbing-member", "absolute-member"],
)
def test_unsafe_members_refused(tmp_path, key, slot, bad) -> None:
    payload = [bad, member("payload/models/m.bin", FILES["models/m.bin"])]
    bundle = craft(tmp_path / "b.bundle", key, FILES, payload=payload)
    expect_refused("E343", bundle, key, slot)
    assert not (tmp_path / "evil.py").exists()


def test_absurd_sizes_refused_before_reading(tmp_path, key, slot) -> None:
    def huge(raw: bytes) -> bytes:
        doc = json.loads(raw)
        doc["files"][1]["size"] = 10 * 2**30
        return json.dumps(doc).encode()

    # craft signs the edited manifest: a valid signature does not make 10 GiB acceptable.
    expect_refused("E344", craft(tmp_path / "b.bundle", key, FILES, manifest_edit=huge), key, slot)
    many = {f"f{i}.py": b"" for i in range(bundles.MAX_FILES + 1)}
    expect_refused("E344", craft(tmp_path / "n.bundle", key, many, payload=[]), key, slot)


def test_member_bigger_than_manifest_says(tmp_path, key, slot) -> None:
    payload = [
        member("payload/edge/__init__.py", FILES["edge/__init__.py"] + b"#more"),
        member("payload/models/m.bin", FILES["models/m.bin"]),
    ]
    expect_refused("E342", craft(tmp_path / "b.bundle", key, FILES, payload=payload), key, slot)


def test_not_a_bundle(tmp_path, key, slot) -> None:
    for name, content in {
        "empty": b"",
        "text": b"hello",
        "gzip-of-text": gzip.compress(b"hello" * 100),
        "tar-without-manifest": _tar_gz([member("payload/x", b"x")]),
    }.items():
        path = tmp_path / name
        path.write_bytes(content)
        expect_refused("E340", path, key, slot)


def _tar_gz(members: list[tuple]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def inflated(monkeypatch) -> list[int]:
    """Counts the bytes the bundle reader decompresses: the work a hostile file can cause."""
    count = [0]
    read = bundles._Inflated.read

    def counting(self, size: int) -> bytes:
        out = read(self, size)
        count[0] += len(out)
        return out

    monkeypatch.setattr(bundles._Inflated, "read", counting)
    return count


def test_a_gzip_stream_appended_to_a_signed_bundle_is_refused_unread(
    tmp_path, key, slot, inflated
) -> None:
    """Regression (issue 16): a signed bundle followed by a gzip stream of 1 GiB of zeros was
    accepted after 8 s of decompressing it (gzip.GzipFile reads on into appended streams)."""
    signed = craft(tmp_path / "ok.bundle", key, FILES).read_bytes()
    bundle = tmp_path / "appended.bundle"
    bundle.write_bytes(signed + gzip.compress(bytes(32 * 2**20)))  # 32 KB, 32 MiB inflated
    started = time.perf_counter()
    error = expect_refused("E340", bundle, key, slot)
    seconds = time.perf_counter() - started
    print(f"a bundle with a gzip stream appended refused in {1000 * seconds:.1f} ms")
    assert "after the end of its gzip stream" in str(error)
    assert inflated[0] <= len(gzip.decompress(signed))  # not a byte of the appended stream
    assert seconds < 5.0  # generous for a noisy machine: ~10 ms measured


@pytest.mark.parametrize(
    "tail",
    [b"\0", b"\n", b"junk" * 1000, gzip.compress(b"")],
    ids=["zero-byte", "newline", "text", "empty-gzip-stream"],
)
def test_any_bytes_after_the_gzip_stream_are_refused(tmp_path, key, slot, tail) -> None:
    bundle = tmp_path / "b.bundle"
    bundle.write_bytes(craft(tmp_path / "ok.bundle", key, FILES).read_bytes() + tail)
    assert "after the end of its gzip stream" in str(expect_refused("E340", bundle, key, slot))


@pytest.mark.parametrize(
    "extra",
    [b"junk", _tar_gz([member("payload/x", b"x")]), bytes(64 * 2**20)],
    ids=["text", "a-second-archive", "64-MiB-of-zeros"],
)
def test_data_after_the_end_of_the_tar_archive_is_refused(
    tmp_path, key, slot, inflated, extra
) -> None:
    """Inside the gzip stream, only the tar archive's own zero padding may follow its end;
    a run of zeros is read no further than that padding can reach."""
    archive = gzip.decompress(craft(tmp_path / "ok.bundle", key, FILES).read_bytes())
    (tmp_path / "again.bundle").write_bytes(gzip.compress(archive))
    bundles.unpack(tmp_path / "again.bundle", None, key.public)  # gzip again: still a bundle
    inflated[0] = 0
    bundle = tmp_path / "b.bundle"
    bundle.write_bytes(gzip.compress(archive + extra))
    error = expect_refused("E340", bundle, key, slot)
    assert "after the end of its tar archive" in str(error)
    assert inflated[0] < len(archive) + 2 * 2**16  # the archive, its padding, one read


def test_decompression_is_bounded_before_the_manifest_is_verified(
    tmp_path, key, slot, inflated
) -> None:
    """An unsigned file cannot make the unit inflate (and tar hold in memory) more than a
    manifest and its signature take: here a 16 MiB PAX header ahead of the manifest."""
    bloated = member(bundles.MANIFEST_NAME, b"{}", pax_headers={"comment": "x" * 2**24})
    bundle = tmp_path / "b.bundle"
    bundle.write_bytes(_tar_gz([bloated]))
    expect_refused("E344", bundle, key, slot)
    assert inflated[0] < bundles.MAX_MANIFEST_BYTES + 2**17


def test_decompression_is_bounded_by_the_verified_manifest(tmp_path, key, slot, inflated) -> None:
    """Once the manifest is verified, the archive may take what its files need and no more:
    a signed bundle whose member carries a 16 MiB PAX header is refused, not inflated."""
    payload = [member("payload/" + p, d) for p, d in FILES.items()]
    payload[0] = member(payload[0][0].name, payload[0][1], pax_headers={"comment": "x" * 2**24})
    expect_refused("E344", craft(tmp_path / "b.bundle", key, FILES, payload=payload), key, slot)
    assert inflated[0] < 2**20


def test_install_rules(tmp_path, key, slot) -> None:
    old = craft(tmp_path / "old.bundle", key, FILES, version="0.1.0")
    new = craft(tmp_path / "new.bundle", key, FILES, version="0.3.0", min_version="0.2.0")
    expect_refused("E345", old, key, slot, hardware="bedside-pi-v1", running_version="0.0.1")
    error = expect_refused("E346", old, key, slot, hardware="sim", running_version="0.2.0")
    assert "--force-downgrade" in str(error)
    expect_refused("E347", new, key, slot, hardware="sim", running_version="0.1.9")
    # Forced downgrade, same version, an unknown running version: all allowed.
    bundles.unpack(
        old,
        slot,
        key.public,
        check=lambda m: bundles.check_install(
            m, hardware="sim", running_version="0.2.0", force=True
        ),
    )
    for running in ("0.3.0", "unknown", "0.2.0"):
        bundles.check_install(
            bundles.Manifest.parse(bundles.read_manifest(new)[0]),
            hardware="sim",
            running_version=running,
        )


def test_versions() -> None:
    assert bundles.parse_version("1.10") > bundles.parse_version("1.9.9")
    assert bundles.parse_version("1.2") == bundles.parse_version("1.2.0.0")
    for bad in ("", "1.x", "v1.2", "1.2.3.4.5", "1..2", None, 3):
        with pytest.raises(ValueError):
            bundles.parse_version(bad)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_bundles_fail_cleanly(tmp_path_factory, data) -> None:
    """Any damage: a BedsideError (never a crash or a hang) and nothing left behind, or
    (a harmless change, e.g. in gzip's header) the very same files."""
    tmp = tmp_path_factory.mktemp("fuzz")
    key = release_key(tmp_path_factory.getbasetemp() / "fuzz-keys")
    good = craft(tmp / "b.bundle", key, FILES).read_bytes()
    damaged = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    slot = tmp / "slots" / "b"
    try:
        bundles.unpack(io.BytesIO(bytes(damaged)), slot, key.public)
    except BedsideError as exc:
        assert exc.code in {"E340", "E341", "E342", "E343", "E344"}
        assert not slot.exists() and not (tmp / "slots" / "b.new").exists()
    else:
        got = {p: hashlib.sha256((slot / p).read_bytes()).digest() for p in FILES}
        assert got == {p: hashlib.sha256(d).digest() for p, d in FILES.items()}


def test_bundle_build_cli_errors(tmp_path, capsys, monkeypatch) -> None:
    from host_tools.cli import main as host_main

    keys = tmp_path / "keys"
    release_key(keys)
    monkeypatch.setenv("BEDSIDE_KEYS", str(keys))
    out = str(tmp_path / "b.bundle")
    for argv, code in (
        (["--version", "1.x"], "E356"),
        (["--version", "1.0", "--min-version", "2.0"], "E356"),
        (["--version", "1.0", "--root", str(tmp_path)], "E356"),  # no edge/ there
        (["--version", "1.0", "--keys", str(tmp_path / "none")], "E324"),  # no release key
    ):
        assert host_main(["bundle", "build", *argv, "--out", out]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error {code}: ") and " — " in err, err
        assert not Path(out).exists()
    assert host_main(["bundle", "build", "--version", "1.0", "--out", out, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sha256"] == hashlib.sha256(Path(out).read_bytes()).hexdigest()
    assert not list(tmp_path.glob(".b.bundle.tmp*"))
