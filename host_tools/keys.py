"""The laptop's Ed25519 keys: the host key (it proves who talks to a unit) and release keys
(they sign bundles; a unit holds the release public key in ``DIR/keys/release.pub``).

Keys live in a keys directory: ``--keys DIR``, else ``$BEDSIDE_KEYS``, else the user's config
directory (``$XDG_CONFIG_HOME/bedside-host/keys``, ``~/.config/bedside-host/keys``)::

    host_key        the host's private key (PEM, PKCS#8), mode 0600
    host_key.pub    its public key line: ``ed25519 BASE64 NAME``
    release_key     a release private key (PEM), mode 0600; release.pub its public line
    known_units     the units this laptop has logged in to: ``DEVICE_ID ed25519 BASE64``

Private keys are written with mode 0600 from the first byte (never readable by others, not
even for a moment), and refused when their file is readable by group or others.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import fail
from edge.files import atomic_write
from edge.link.auth import PublicKey, raw_public, write_private_key
from edge.link.codes import BAD_KEY_FILE, BAD_KEY_LINE, KEY_EXISTS, NO_KEY, UNIT_KEY_CHANGED

__all__ = [
    "HostKey",
    "KnownUnits",
    "ReleaseKey",
    "default_keys_dir",
    "read_public_key",
    "release_public_key",
]


def default_keys_dir() -> Path:
    """Where the keys live when ``--keys`` is not given."""
    if os.environ.get("BEDSIDE_KEYS"):
        return Path(os.environ["BEDSIDE_KEYS"])
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "bedside-host" / "keys"


#: The release public key's file, beside ``release_key`` here and in ``DIR/keys`` on a unit.
RELEASE_PUB = "release.pub"


def read_public_key(path: Path) -> PublicKey:
    """The public key line in ``path`` (``ed25519 BASE64 NAME``, ``#`` lines skipped).

    Raises:
        BedsideError: E324 when the file does not exist, E326 when it holds no key line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(NO_KEY, f"no public key file {path}", ReleaseKey.HOW_TO_MAKE)
    except (OSError, UnicodeDecodeError) as exc:
        fail(BAD_KEY_LINE, f"cannot read {Path(path).name}: {exc}", "check the file")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        fail(BAD_KEY_LINE, f"{Path(path).name} holds no public key line", "copy the key again")
    return PublicKey.parse(lines[0])


def release_public_key(keys_dir: Path) -> PublicKey:
    """This laptop's release public key (``release.pub`` in ``keys_dir``): what a unit
    needs to accept the bundles signed here. E324 when there is none."""
    return read_public_key(Path(keys_dir) / RELEASE_PUB)


class _Ed25519Key:
    """An Ed25519 private key in a file, with its public line beside it."""

    #: The file name in the keys directory (subclasses set it).
    FILE = ""
    #: What to run when it is missing (for the error message).
    HOW_TO_MAKE = ""

    def __init__(self, private: Ed25519PrivateKey, name: str, path: Path | None = None) -> None:
        self._private = private
        self.name = name
        self.path = path

    @property
    def public_raw(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return raw_public(self._private)

    @property
    def public(self) -> PublicKey:
        """The public key with this key's name."""
        return PublicKey(self.public_raw, self.name)

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message`` (64 bytes)."""
        return self._private.sign(message)

    @classmethod
    def generate(cls, keys_dir: Path, *, name: str | None = None, force: bool = False):
        """Make a new key and save it in ``keys_dir``; E327 if one exists (unless force)."""
        path = Path(keys_dir) / cls.FILE
        if path.exists() and not force:
            fail(
                KEY_EXISTS,
                f"{cls.FILE} already exists in {keys_dir}",
                "keep it (pass --force to replace it; paired units will refuse the new key)",
            )
        name = "-".join(
            (name or f"{os.environ.get('USER', 'host')}@{socket.gethostname()}").split()
        )
        key = cls(Ed25519PrivateKey.generate(), name, path)
        key._save(path)
        return key

    @classmethod
    def load(cls, keys_dir: Path):
        """Load the key from ``keys_dir``; E324 when missing, E325 when unreadable or unsafe."""
        path = Path(keys_dir) / cls.FILE
        try:
            info = path.stat()
            pem = path.read_bytes()
        except FileNotFoundError:
            fail(NO_KEY, f"no {cls.FILE} in {keys_dir}", cls.HOW_TO_MAKE)
        except OSError as exc:
            fail(BAD_KEY_FILE, f"cannot read {cls.FILE}: {exc.strerror}", "check its permissions")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            fail(
                BAD_KEY_FILE,
                f"{cls.FILE} is readable by other users (mode {stat.S_IMODE(info.st_mode):o})",
                f"chmod 600 {path}",
            )
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            private = None
        if not isinstance(private, Ed25519PrivateKey):
            fail(BAD_KEY_FILE, f"{cls.FILE} is not an Ed25519 private key", cls.HOW_TO_MAKE)
        name = ""
        public_path = path.with_name(path.name + ".pub")
        if public_path.exists():
            try:
                name = PublicKey.parse(public_path.read_text(encoding="utf-8")).name
            except Exception:  # the name is cosmetic; the private key is what counts
                name = ""
        return cls(private, name or cls.FILE, path)

    def _save(self, path: Path) -> None:
        write_private_key(path, self._private)
        atomic_write(path.with_name(path.name + ".pub"), (self.public.line() + "\n").encode())


class HostKey(_Ed25519Key):
    """The host's key: ``authenticate`` and ``keys authorize`` use it."""

    FILE = "host_key"
    HOW_TO_MAKE = "make one with: bedside-host keys init"


class ReleaseKey(_Ed25519Key):
    """A release key: signs bundles (``bundle build``); the unit verifies with release.pub."""

    FILE = "release_key"
    HOW_TO_MAKE = "make one with: bedside-host keys init --release"

    def _save(self, path: Path) -> None:
        super()._save(path)
        # The name units and bundle tooling look for (DIR/keys/release.pub on the unit).
        atomic_write(path.with_name(RELEASE_PUB), (self.public.line() + "\n").encode())


class KnownUnits:
    """The key each unit proved itself with, pinned at this laptop's first login to it.

    A unit signs its challenge with a key of its own (edge.link.auth): the first login, at
    pairing with the unit in hand, pins that key in ``known_units``; every later login must
    come with the same key, else E328 (a device in line playing the unit, or the unit was
    reinstalled and has a new key). Pass it to ``Client.authenticate(unit_keys=...)``.
    """

    FILE = "known_units"

    def __init__(self, keys_dir: Path) -> None:
        self.path = Path(keys_dir) / self.FILE

    def pinned(self) -> dict[str, PublicKey]:
        """The pinned keys by device id (none when the file does not exist)."""
        if not self.path.exists():
            return {}
        out = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            device_id, _, key = line.strip().partition(" ")
            if device_id and not device_id.startswith("#"):
                out[device_id] = PublicKey.parse(key)
        return out

    def pin(self, device_id: str, unit_key: bytes) -> None:
        """Remember ``unit_key`` for ``device_id`` (a login passed with it); a unit already
        known keeps its key (:meth:`check` refused a different one before)."""
        if device_id in self.pinned():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{device_id} {PublicKey(unit_key).line()}\n")

    def check(self, device_id: str, unit_key: bytes) -> None:
        """E328 when ``device_id`` is known here by another key than ``unit_key``."""
        known = self.pinned().get(device_id)
        key = PublicKey(unit_key)
        if known is not None and known.raw != unit_key:
            fail(
                UNIT_KEY_CHANGED,
                f"{device_id} answered with key {key.fingerprint}, not {known.fingerprint} "
                "that this laptop knows it by",
                "check that nothing sits between this laptop and the unit; if the unit was "
                f"reinstalled, delete its line from {self.path} and log in again",
            )
