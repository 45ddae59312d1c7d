"""Signed signature-feed bundles: verify, install atomically, roll back.

Theory of operation
-------------------
The vendor publishes the box's rules as one *bundle*: a tar file (plain or
gzip-compressed) holding exactly::

    manifest.json      what the bundle is (below); the signed bytes
    manifest.sig       Ed25519 signature over the exact bytes of manifest.json,
                       base64 on one line (64 bytes once decoded)
    rules/NAME.rules   the rule files, each listed in the manifest

and optionally the directory entry ``rules/`` itself. ``manifest.json``::

    {"format": 1,
     "feed": "reefguard-iot",          # [A-Za-z0-9._-]{1,64}
     "version": 42,                    # integer, strictly increasing
     "created": 1718000000,            # unix seconds, when the vendor built it
     "files": [{"name": "rules/iot.rules", "sha256": "<64 hex>", "size": 1234}],
     "revoke": ["<key id>", ...]}      # optional: signing keys to distrust

A bundle is installed only if *every* check passes, in this order; the first
failure raises `FeedError` with a one-line reason and nothing has been written
where the service reads (the installed version and its files are untouched):

1. size: the bundle, each member and the manifest are under `Limits`;
2. tar structure: members are regular files (links, devices, FIFOs are
   refused), names are safe relative paths (no absolute path, no ``..``, no
   backslash, NUL or empty component), no name appears twice, nothing but
   ``manifest.json``, ``manifest.sig`` and ``rules/*.rules``;
3. signature: ``manifest.sig`` verifies over ``manifest.json`` with one of the
   trusted public keys (``signatures/feed-keys/*.pub``, the configured
   ``feed.keys-dir``, and ``--feed-keys`` directories; PEM Ed25519 keys),
   and that key is not revoked (below);
4. manifest: well-formed, and the rule files present are exactly those it
   lists, each with its sha256 and size;
5. feed and version: the same feed name as the installed one (a vendor key
   may sign several feeds; one of them must not replace another by having
   a higher number), unless the operator asks for it (`allow_other_feed`);
   and a version strictly greater than the installed one, so a replayed
   older (validly signed) bundle cannot roll the box back to rules with
   known holes, unless the operator asks for it (`allow_downgrade`);
6. rules: the files load through the detection engine (``ips.cli.load_engine``)
   with no syntax error and at least one rule. Rules skipped for keywords the
   engine does not support are fine; they are counted in the status.

Key revocation. A key is distrusted, even while its ``.pub`` file is still
in a key directory, when its id (`key_id`) is listed in a file named
``revoked`` in any key directory (the operator's list: one id per line, ``#``
comments), or in the ``revoke`` list of a bundle that was installed (the
vendor's: a bundle signed by the next key, shipped in advance, retires a
leaked one; the box keeps these in ``feed/revoked.json`` for good). A bundle
may not revoke the key that signs it. `rollback` refuses a version signed by
a key revoked since.

Steps 1-5 are sans-IO (`verify_bundle` takes bytes and keys and returns a
`Bundle`); step 6 and the install need files. On disk, under
``DATA_DIR/feed/``::

    v42-<digest>/      one directory per installed version (manifest.json,
                       manifest.sig, rules/), never modified once renamed here
    current -> v42-..  what the service loads (relative symlink)
    previous -> v41-.. last known good, the target of `rollback()`
    status.json        `status()`; also the store's `feed.status` setting
    .staging-*/        a bundle being checked; renamed into place when good
    .lock              one installer at a time

A new version is written and checked in a staging directory, renamed to its
version directory, and published by replacing the ``current`` symlink with
``os.replace`` (atomic): a reader sees the old set or the new set, never a
mix. The running service picks it up on reload (`reefguard feed apply`
sends it SIGHUP): it compiles in the background and swaps only a set that
compiled, so traffic is not interrupted and a failure keeps the running set.
Old versions beyond `KEEP_VERSIONS` are pruned, never ``current`` or
``previous``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

log = logging.getLogger("reefguard.feed")

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
RULES_DIR = "rules"
FEED_DIR = "feed"
STATUS_FILE = "status.json"
STATUS_SETTING = "feed.status"
KEEP_VERSIONS = 3
"""Version directories kept on disk: current, previous and one more."""

SHIPPED_KEYS_DIR = Path(__file__).resolve().parent.parent / "signatures" / "feed-keys"
# \Z, not $: "$" also matches before a trailing newline.
FEED_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
RULE_FILE_NAME = re.compile(r"^rules/[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.rules\Z")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}\Z")
KEY_ID = re.compile(r"^[0-9a-f]{16}\Z")
REVOKED_LIST = "revoked"
"""In a key directory: the operator's list of revoked key ids."""
REVOKED_FILE = "revoked.json"
"""In the feed directory: key ids revoked by installed bundles, and by whom."""
MAX_REVOKE = 64
MAX_VERSION = (1 << 63) - 1


class FeedError(Exception):
    """A bundle was refused (or a feed operation cannot be done); the message
    is the one-line reason shown to the operator."""

    def __init__(self, reason: str, version: int | None = None) -> None:
        super().__init__(reason)
        self.version = version
        """The refused bundle's version, when it got as far as being known."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a bundle may make us read; a hostile bundle (or a gzip
    bomb) costs at most these many bytes of memory."""

    bundle_bytes: int = 32 << 20
    """The bundle file as downloaded (compressed)."""
    file_bytes: int = 16 << 20
    """One rule file, uncompressed."""
    total_bytes: int = 64 << 20
    """All members together, uncompressed."""
    manifest_bytes: int = 1 << 20
    """manifest.json, uncompressed."""
    members: int = 256
    """Tar members, directory entries included."""


@dataclass(frozen=True, slots=True)
class TrustedKey:
    key: Ed25519PublicKey
    """The public key itself."""
    key_id: str
    """First 16 hex digits of the sha256 of the raw key: short, stable name."""
    path: str
    """Where it was read from, for messages."""
    revoked: str | None = None
    """Who revoked it (it then verifies nothing), or None."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle that passed the sans-IO checks (signature, structure, hashes)."""

    feed: str
    """Feed name from the manifest."""
    version: int
    """Feed version; strictly increasing."""
    created: int
    """Unix seconds when the vendor built the bundle."""
    files: dict[str, bytes]
    """Rule file name in the bundle (``rules/x.rules``) -> content, manifest order."""
    manifest: bytes
    """The exact signed manifest bytes."""
    signature: bytes
    """The raw 64-byte signature."""
    signed_by: str
    """key_id of the trusted key that verified the signature."""
    revokes: tuple[str, ...] = ()
    """key_ids the manifest revokes."""

    @property
    def digest(self) -> str:
        """sha256 of the manifest: names this exact content."""
        return hashlib.sha256(self.manifest).hexdigest()


# ----------------------------------------------------------------------
# keys

def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_public_key(data: bytes, path: str = "<key>") -> TrustedKey:
    """A PEM (SubjectPublicKeyInfo) Ed25519 public key, as `openssl pkey -pubout`
    or `generate_key` writes it."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise FeedError(f"trusted key {path} is not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise FeedError(f"trusted key {path} is not an Ed25519 key")
    return TrustedKey(key, key_id(key), path)


def load_trusted_keys(directories: list[str | Path]) -> list[TrustedKey]:
    """Every ``*.pub`` in these directories, marked revoked when a
    ``revoked`` list in any of them names it (missing directories are
    skipped; an unreadable key file or list is an error, not silently
    ignored)."""
    keys: list[TrustedKey] = []
    revoked: dict[str, str] = {}
    seen: set[str] = set()
    for directory in directories:
        path = Path(directory)
        if not path.is_dir():
            continue
        for file in sorted(path.glob("*.pub")):
            trusted = parse_public_key(file.read_bytes(), str(file))
            if trusted.key_id not in seen:
                seen.add(trusted.key_id)
                keys.append(trusted)
        if (path / REVOKED_LIST).exists():
            for key in parse_revoked_list((path / REVOKED_LIST).read_text(),
                                          str(path / REVOKED_LIST)):
                revoked.setdefault(key, f"listed in {path / REVOKED_LIST}")
    return with_revocations(keys, revoked)


def parse_revoked_list(text: str, path: str = "<revoked>") -> list[str]:
    """Key ids, one per line; ``#`` starts a comment."""
    ids = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        if not KEY_ID.match(entry):
            raise FeedError(f"{path} line {number}: {entry!r} is not a key id (16 hex digits)")
        ids.append(entry)
    return ids


def with_revocations(keys: list[TrustedKey], revoked: dict[str, str]) -> list[TrustedKey]:
    """`keys`, those named in `revoked` (key id -> who revoked it) marked so."""
    return [replace(key, revoked=revoked[key.key_id])
            if key.key_id in revoked and key.revoked is None else key for key in keys]


def default_key_dirs(extra: list[str | Path] | None = None,
                     config_dir: str | Path | None = None) -> list[Path]:
    """The shipped directory, the configured one (`feed.keys-dir`), then `extra`."""
    dirs = [SHIPPED_KEYS_DIR]
    if config_dir:
        dirs.append(Path(config_dir))
    dirs.extend(Path(d) for d in extra or [])
    return dirs


def generate_key(path: str | Path) -> tuple[Path, Path]:
    """Vendor tooling: a new Ed25519 key pair. The private key goes to `path`
    (PEM PKCS#8, unencrypted, mode 0600: keep it offline), the public key to
    `path` + ``.pub`` (install it in a trusted key directory)."""
    private_path = Path(path)
    public_path = Path(str(path) + ".pub")
    if private_path.exists():
        raise FeedError(f"{private_path} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def _load_private_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise FeedError(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FeedError(f"{path} is not an Ed25519 private key")
    return key


# ----------------------------------------------------------------------
# building (vendor side)

def build_bundle(rule_files: list[str | Path], private_key_path: str | Path, version: int,
                 out_path: str | Path, feed_name: str = "reefguard",
                 created: int | None = None, revoke: list[str] = ()) -> Path:
    """Vendor tooling: sign `rule_files` as `feed_name` `version` into a
    gzip-compressed bundle at `out_path`, revoking the key ids in `revoke`.
    Rule files keep their base name under ``rules/``."""
    if not FEED_NAME.match(feed_name):
        raise FeedError(f"feed name {feed_name!r} must be 1-64 of A-Z a-z 0-9 . _ -")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise FeedError("version must be a positive 63-bit integer")
    key = _load_private_key(private_key_path)
    files: dict[str, bytes] = {}
    for path in rule_files:
        name = f"{RULES_DIR}/{Path(path).name}"
        if not RULE_FILE_NAME.match(name):
            raise FeedError(f"rule file name {Path(path).name!r} must be NAME.rules, NAME "
                            "of A-Z a-z 0-9 . _ - (starting with a letter or digit)")
        if name in files:
            raise FeedError(f"two rule files are named {Path(path).name!r}")
        files[name] = Path(path).read_bytes()
    if not files:
        raise FeedError("no rule files given")
    manifest = {"format": FORMAT, "feed": feed_name, "version": version,
                "created": int(time.time()) if created is None else int(created),
                "files": [{"name": name, "sha256": hashlib.sha256(data).hexdigest(),
                           "size": len(data)} for name, data in files.items()]}
    if revoke:
        revoke = [key.lower() for key in revoke]
        if own := {key_id(key.public_key())} & set(revoke):
            raise FeedError(f"the signing key {own.pop()} cannot revoke itself")
        manifest["revoke"] = revoke
    manifest_bytes = (json.dumps(manifest, indent=1) + "\n").encode()
    signature = base64.b64encode(key.sign(manifest_bytes)) + b"\n"
    out = Path(out_path)
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(MANIFEST, manifest_bytes), (SIGNATURE, signature), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = manifest["created"]
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out


# ----------------------------------------------------------------------
# verification (sans-IO)

def _check_member_name(name: str) -> None:
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name
            or any(part in ("", ".", "..") for part in parts)):
        raise FeedError(f"unsafe member name {name!r} (absolute, '..', or empty component)")


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    return "not a regular file"


GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(data: bytes, limits: Limits) -> bytes:
    """Inflate at most what the limits allow (members plus their tar headers),
    so neither a gzip bomb nor a huge pax header can exhaust memory."""
    bound = limits.total_bytes + limits.manifest_bytes + (limits.members + 4) * 2048
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, bound + 1)
    if len(out) > bound or inflater.unconsumed_tail:
        raise FeedError(f"bundle inflates to more than {bound} bytes")
    if not inflater.eof:
        raise FeedError("not a readable tar bundle (truncated gzip stream)")
    if inflater.unused_data:
        raise FeedError("bundle has data after its gzip stream")
    return out


def read_members(data: bytes, limits: Limits = Limits()) -> dict[str, bytes]:
    """The bundle's files by name, after the structural checks (step 1-2).
    Sizes are checked from each header before its data is read, so a
    compressed bomb is refused without being inflated."""
    if len(data) > limits.bundle_bytes:
        raise FeedError(f"bundle is {len(data)} bytes, over the {limits.bundle_bytes}-byte limit")
    members: dict[str, bytes] = {}
    total = 0
    try:
        tar_bytes = _gunzip(data, limits) if data[:2] == GZIP_MAGIC else data
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            count = 0
            while True:
                member = tar.next()
                if member is None:
                    break
                count += 1
                if count > limits.members:
                    raise FeedError(f"bundle has more than {limits.members} members")
                name = member.name
                _check_member_name(name.rstrip("/") if member.isdir() else name)
                if member.isdir():
                    if name.rstrip("/") != RULES_DIR:
                        raise FeedError(f"unexpected directory {name!r} in the bundle")
                    continue
                if not member.isreg():
                    raise FeedError(f"member {name!r} is {_member_kind(member)}; "
                                    "only regular files are accepted")
                if name in members:
                    raise FeedError(f"member {name!r} appears twice")
                if name not in (MANIFEST, SIGNATURE) and not RULE_FILE_NAME.match(name):
                    raise FeedError(f"unexpected member {name!r} (only {MANIFEST}, "
                                    f"{SIGNATURE} and rules/*.rules belong in a bundle)")
                limit = limits.manifest_bytes if name == MANIFEST else limits.file_bytes
                if member.size > limit:
                    raise FeedError(f"member {name!r} is {member.size} bytes, over the "
                                    f"{limit}-byte limit")
                total += member.size
                if total > limits.total_bytes:
                    raise FeedError(f"bundle unpacks to more than {limits.total_bytes} bytes")
                handle = tar.extractfile(member)
                content = handle.read(member.size + 1) if handle is not None else b""
                if len(content) != member.size:
                    raise FeedError(f"member {name!r} is truncated")
                members[name] = content
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        # A truncated gzip stream or garbage: not a bundle, whatever the layer.
        raise FeedError(f"not a readable tar bundle ({exc.__class__.__name__}: {exc})") from None
    for required in (MANIFEST, SIGNATURE):
        if required not in members:
            raise FeedError(f"bundle has no {required}")
    return members


def _decode_signature(data: bytes) -> bytes:
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise FeedError(f"{SIGNATURE} is not base64") from None
    if len(raw) != 64:
        raise FeedError(f"{SIGNATURE} holds {len(raw)} bytes, not an Ed25519 signature (64)")
    return raw


def check_signature(manifest: bytes, signature: bytes, keys: list[TrustedKey]) -> TrustedKey:
    """The trusted key that signed `manifest`, else FeedError."""
    if not keys:
        raise FeedError("no trusted feed keys configured (signatures/feed-keys/*.pub, "
                        "feed.keys-dir or --feed-keys)")
    for trusted in keys:
        try:
            trusted.key.verify(signature, manifest)
        except InvalidSignature:
            continue
        if trusted.revoked:
            raise FeedError(f"{MANIFEST} is signed by key {trusted.key_id} ({trusted.path}), "
                            f"which is revoked ({trusted.revoked})")
        return trusted
    raise FeedError(f"bad signature: {MANIFEST} is not signed by any of the "
                    f"{len(keys)} trusted key(s)")


def parse_manifest(data: bytes) -> dict[str, Any]:
    """The manifest's fields, checked for shape (after the signature check:
    a vendor's mistake, not an attacker's, is what this catches)."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"{MANIFEST} is not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise FeedError(f"{MANIFEST} is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise FeedError(f"{MANIFEST} format {manifest.get('format')!r} is not {FORMAT}")
    feed = manifest.get("feed")
    if not isinstance(feed, str) or not FEED_NAME.match(feed):
        raise FeedError(f"{MANIFEST}: feed name {feed!r} must be 1-64 of A-Z a-z 0-9 . _ -")
    for key in ("version", "created"):
        value = manifest.get(key)
        if (isinstance(value, bool) or not isinstance(value, int)
                or not (1 if key == "version" else 0) <= value <= MAX_VERSION):
            raise FeedError(f"{MANIFEST}: {key} {value!r} is not a positive 63-bit integer")
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise FeedError(f"{MANIFEST}: files must be a non-empty list")
    names: set[str] = set()
    for entry in files:
        if not isinstance(entry, dict):
            raise FeedError(f"{MANIFEST}: a files entry is not an object")
        name, digest, size = entry.get("name"), entry.get("sha256"), entry.get("size")
        if not isinstance(name, str) or not RULE_FILE_NAME.match(name):
            raise FeedError(f"{MANIFEST}: file name {name!r} is not rules/NAME.rules")
        if name in names:
            raise FeedError(f"{MANIFEST}: {name} is listed twice")
        names.add(name)
        if not isinstance(digest, str) or not SHA256_HEX.match(digest):
            raise FeedError(f"{MANIFEST}: {name} has no valid sha256")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise FeedError(f"{MANIFEST}: {name} has no valid size")
    revoke = manifest.get("revoke", [])
    if (not isinstance(revoke, list) or len(revoke) > MAX_REVOKE
            or not all(isinstance(key, str) and KEY_ID.match(key) for key in revoke)):
        raise FeedError(f"{MANIFEST}: revoke must be a list of at most {MAX_REVOKE} key ids "
                        "(16 lowercase hex digits)")
    return manifest


def verify_bundle(data: bytes, keys: list[TrustedKey], *, installed_version: int | None = None,
                  installed_digest: str | None = None, allow_downgrade: bool = False,
                  installed_feed: str | None = None, allow_other_feed: bool = False,
                  limits: Limits = Limits()) -> Bundle:
    """Steps 1-5 of the module docstring over the bundle's bytes.

    A bundle identical to the installed one (same manifest digest) passes the
    version check, so that polling an unchanged URL is not a refusal; the
    caller reports it as up to date."""
    members = read_members(data, limits)
    manifest_bytes = members.pop(MANIFEST)
    signature = _decode_signature(members.pop(SIGNATURE))
    signer = check_signature(manifest_bytes, signature, keys)
    manifest = parse_manifest(manifest_bytes)
    listed = {entry["name"]: entry for entry in manifest["files"]}
    for name in members:
        if name not in listed:
            raise FeedError(f"member {name!r} is not listed in {MANIFEST}")
    files: dict[str, bytes] = {}
    for name, entry in listed.items():
        if name not in members:
            raise FeedError(f"{name} is listed in {MANIFEST} but missing from the bundle")
        content = members[name]
        if len(content) != entry["size"]:
            raise FeedError(f"{name} is {len(content)} bytes, the manifest says {entry['size']} "
                            "(tampered or corrupt)")
        if hashlib.sha256(content).hexdigest() != entry["sha256"]:
            raise FeedError(f"{name} does not match its sha256 in {MANIFEST} (tampered or corrupt)")
        files[name] = content
    bundle = Bundle(feed=manifest["feed"], version=manifest["version"],
                    created=manifest["created"], files=files, manifest=manifest_bytes,
                    signature=signature, signed_by=signer.key_id,
                    revokes=tuple(manifest.get("revoke", ())))
    if signer.key_id in bundle.revokes:
        raise FeedError(f"the bundle revokes key {signer.key_id}, the key that signs it",
                        bundle.version)
    if installed_feed is not None and bundle.feed != installed_feed and not allow_other_feed:
        raise FeedError(f"feed {bundle.feed!r} is not the installed feed {installed_feed!r}; "
                        "--allow-other-feed to replace it", bundle.version)
    if (installed_version is not None and bundle.version <= installed_version
            and not allow_downgrade and bundle.digest != installed_digest):
        raise FeedError(f"version {bundle.version} is not newer than the installed "
                        f"{installed_version} (a replayed old bundle?); "
                        "--allow-downgrade to install it anyway", bundle.version)
    return bundle


# ----------------------------------------------------------------------
# the installed feed (I/O from here on)

def feed_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / FEED_DIR


def _installed(data_dir: str | Path, link: str = "current") -> tuple[Path, dict] | None:
    """(version directory, manifest) that `link` points at, or None."""
    path = feed_dir(data_dir) / link
    try:
        target = path.resolve(strict=True)
        manifest = json.loads((target / MANIFEST).read_bytes())
    except (OSError, ValueError, RuntimeError):
        return None
    return target, manifest


def current_rule_files(data_dir: str | Path) -> list[str]:
    """The installed feed's rule files (resolved paths, manifest order), or []
    when none is installed. Resolved, so a swap between this call and the
    load cannot mix two versions' files."""
    installed = _installed(data_dir)
    if installed is None:
        return []
    target, manifest = installed
    files = [str(target / entry["name"]) for entry in manifest.get("files", ())
             if isinstance(entry, dict) and isinstance(entry.get("name"), str)
             and RULE_FILE_NAME.match(entry["name"])]
    return [path for path in files if os.path.isfile(path)]


def installed_version(data_dir: str | Path) -> int | None:
    installed = _installed(data_dir)
    return installed[1].get("version") if installed else None


def read_status(data_dir: str | Path) -> dict[str, Any]:
    try:
        status = json.loads((feed_dir(data_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        status = {}
    return status if isinstance(status, dict) else {}


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _point(directory: Path, link: str, target: str | None) -> None:
    """Atomically make `link` point at `target` (a sibling name), or remove it."""
    path = directory / link
    if target is None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    temporary = directory / f".{link}.tmp"
    try:
        temporary.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, temporary)
    os.replace(temporary, path)


def _link_target(directory: Path, link: str) -> str | None:
    try:
        return os.readlink(directory / link)
    except OSError:
        return None


def check_rules(paths: list[str], config=None, cache_dir: str | None = None) -> dict[str, Any]:
    """Step 6: the rules load with no syntax error and at least one rule.
    Returns counts for the status; raises FeedError otherwise."""
    from ips.cli import load_engine
    from ips.config import Config

    try:
        engine, report = load_engine(paths, config or Config(), cache_dir, quiet=True)
    except (OSError, ValueError) as exc:
        raise FeedError(f"rules could not be loaded ({exc})") from None
    if report is None:
        raise FeedError("the bundle holds no rule file")
    if report.errors:
        path, line, _sid, reason, _keyword = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        where = f"{Path(path).parent.name}/{Path(path).name}"
        raise FeedError(f"rule error in {where} line {line}: {reason}{more}")
    if engine is None or not report.loaded:
        raise FeedError(f"no rule loads from the bundle ({len(report.skipped)} skipped)")
    return {"rules": report.loaded, "skipped": len(report.skipped),
            "skipped_by_reason": dict(report.by_keyword())}


@dataclass(slots=True)
class Result:
    """What `apply` did."""

    outcome: str
    """installed, or current (this exact bundle is already installed)."""
    status: dict
    """The feed status after the attempt (also in status.json and the store)."""


def apply(bundle_bytes: bytes, data_dir: str | Path, keys: list[TrustedKey], *,
          source: str = "", allow_downgrade: bool = False, allow_other_feed: bool = False,
          config=None, cache_dir: str | None = None, limits: Limits = Limits()) -> Result:
    """Verify and install a bundle. Raises FeedError (after recording the
    refusal in the status) when it is refused; the installed feed is then
    exactly as before."""
    directory = feed_dir(data_dir)
    with _locked(directory):
        keys = with_revocations(keys, {key: f"revoked by key {entry.get('by')} in "
                                            f"version {entry.get('version')}"
                                       for key, entry in revocations(data_dir).items()})
        installed = _installed(data_dir)
        version = installed[1].get("version") if installed else None
        digest = (hashlib.sha256((installed[0] / MANIFEST).read_bytes()).hexdigest()
                  if installed else None)
        attempted = None
        try:
            bundle = verify_bundle(bundle_bytes, keys, installed_version=version,
                                   installed_digest=digest, allow_downgrade=allow_downgrade,
                                   installed_feed=installed[1].get("feed") if installed else None,
                                   allow_other_feed=allow_other_feed, limits=limits)
            attempted = bundle.version
            if installed and bundle.digest == digest:
                return Result("current", _record(data_dir, "current", source, bundle.version))
            _install(directory, bundle, source, config, cache_dir)
            _save_revocations(directory, bundle)
        except FeedError as exc:
            if exc.version is None:
                exc.version = attempted
            _record(data_dir, "refused", source, exc.version, reason=str(exc))
            raise
        result = Result("installed", _record(data_dir, "installed", source, bundle.version))
        _prune(directory)
        return result


def apply_from(source: str, data_dir: str | Path, key_dirs: list[str | Path], *,
               allow_downgrade: bool = False, allow_other_feed: bool = False, config=None,
               cache_dir: str | None = None, limits: Limits = Limits()) -> Result:
    """`apply` for a bundle file or http(s) URL, with the keys of `key_dirs`;
    a bundle that cannot even be read, or a bad key directory, is a refusal
    recorded like the others."""
    try:
        keys = load_trusted_keys(key_dirs)
        data = read_bundle(source, limits)
    except FeedError as exc:
        with _locked(feed_dir(data_dir)):
            _record(data_dir, "refused", source, None, reason=str(exc))
        raise
    return apply(data, data_dir, keys, source=source, allow_downgrade=allow_downgrade,
                 allow_other_feed=allow_other_feed,
                 config=config, cache_dir=cache_dir, limits=limits)


def _install(directory: Path, bundle: Bundle, source: str, config,
             cache_dir: str | None) -> None:
    """Write `bundle` to a staging directory, check its rules there, rename
    it to its version directory and publish it as `current`."""
    name = f"v{bundle.version}-{bundle.digest[:12]}"
    final = directory / name
    if not final.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
        try:
            staging.chmod(0o755)   # readable like any rule file; mkdtemp makes it 0700
            (staging / RULES_DIR).mkdir()
            for file, content in bundle.files.items():
                _write_file(staging / file, content)
            _write_file(staging / MANIFEST, bundle.manifest)
            _write_file(staging / SIGNATURE, base64.b64encode(bundle.signature) + b"\n")
            counts = check_rules([str(staging / file) for file in bundle.files], config, cache_dir)
            record = dict(counts, installed_at=time.time(), signed_by=bundle.signed_by,
                          source=source or None)
            _write_file(staging / INSTALL_RECORD, json.dumps(record, indent=1).encode())
            _fsync_dir(staging / RULES_DIR)
            _fsync_dir(staging)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    # else: the same content was installed before (rolled back from, or still
    # kept); it was checked then and version directories are never modified.
    old = _link_target(directory, "current")
    if old is not None and old != name:
        _point(directory, "previous", old)   # before current moves: always one good set
    _point(directory, "current", name)
    _fsync_dir(directory)


def revocations(data_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Key ids revoked by installed bundles: {key_id: {by, version, at}}."""
    try:
        saved = json.loads((feed_dir(data_dir) / REVOKED_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Losing revocations would re-trust a retired key: fail closed.
        raise FeedError(f"{feed_dir(data_dir) / REVOKED_FILE} is unreadable ({exc}); "
                        "no bundle is accepted until it is repaired") from None
    return {key: entry for key, entry in saved.items()
            if KEY_ID.match(key) and isinstance(entry, dict)} if isinstance(saved, dict) else {}


def _save_revocations(directory: Path, bundle: Bundle) -> None:
    """Add the installed bundle's revocations to REVOKED_FILE (never removed)."""
    if not bundle.revokes:
        return
    saved = revocations(directory.parent)
    for key in bundle.revokes:
        saved.setdefault(key, {"by": bundle.signed_by, "version": bundle.version,
                               "at": time.time()})
    temporary = directory / f".{REVOKED_FILE}.tmp"
    _write_file(temporary, json.dumps(saved, indent=1).encode())
    os.replace(temporary, directory / REVOKED_FILE)
    _fsync_dir(directory)


def rollback(data_dir: str | Path, key_dirs: list[str | Path] = ()) -> dict[str, Any]:
    """Switch `current` back to the last-known-good version; the version left
    becomes `previous`, so a second rollback undoes the first. A version
    signed by a key revoked since (by a bundle, or in the `revoked` list of
    one of `key_dirs`) is not rolled back to."""
    directory = feed_dir(data_dir)
    with _locked(directory):
        current = _link_target(directory, "current")
        previous = _link_target(directory, "previous")
        target = _installed(data_dir, "previous")
        reason = None
        if previous is None or target is None:
            reason = "no previous version to roll back to"
        else:
            signer = _install_record(target[0]).get("signed_by")
            revoked = {key.key_id for key in load_trusted_keys(list(key_dirs)) if key.revoked}
            if signer in revoked or signer in revocations(data_dir):
                reason = (f"version {target[1].get('version')} was signed by key {signer}, "
                          "which is revoked since")
        if reason:
            _record(data_dir, "rollback refused", "", None, reason=reason)
            raise FeedError(reason)
        _point(directory, "current", previous)
        _point(directory, "previous", current)
        _fsync_dir(directory)
        return _record(data_dir, "rolled back", "", installed_version(data_dir))


def _prune(directory: Path) -> list[str]:
    """Remove version directories beyond KEEP_VERSIONS (never current or
    previous) and staging left by an interrupted install."""
    keep = {_link_target(directory, "current"), _link_target(directory, "previous")}
    versions = []
    for path in directory.iterdir():
        if path.name.startswith(".staging-") and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith("v") and path.is_dir() and not path.is_symlink():
            match = re.match(r"^v(\d+)-", path.name)
            versions.append((int(match.group(1)) if match else 0, path.stat().st_mtime, path))
    removed = []
    kept = sum(1 for _, _, path in versions if path.name in keep)
    for _, _, path in sorted(versions, reverse=True):
        if path.name in keep:
            continue
        if kept < KEEP_VERSIONS:
            kept += 1
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


# ----------------------------------------------------------------------
# status

INSTALL_RECORD = "install.json"
"""Written into a version directory before it is renamed into place: what
the rule check found, who signed it, where it came from, when."""


def _install_record(version_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads((version_dir / INSTALL_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _record(data_dir: str | Path, result: str, source: str, version: int | None, *,
            reason: str = "") -> dict[str, Any]:
    """Write the status after an attempt to status.json and the store.

    The shape extends what the dashboard reads (`state`, `version`,
    `updated`, `source`, `error`): the installed version's facts come from
    its directory, the attempt from the arguments."""
    now = time.time()
    before = read_status(data_dir)
    installed = _installed(data_dir)
    previous = _installed(data_dir, "previous")
    status: dict[str, Any] = {"state": "none"}
    if installed:
        target, manifest = installed
        record = _install_record(target)
        changed = result in ("installed", "rolled back")
        status = {"state": "ok", "feed": manifest.get("feed"),
                  "version": manifest.get("version"), "created": manifest.get("created"),
                  "installed_at": record.get("installed_at"),
                  "updated": now if changed else before.get("updated", record.get("installed_at")),
                  "rules": record.get("rules"), "skipped": record.get("skipped"),
                  "skipped_by_reason": record.get("skipped_by_reason"),
                  "signed_by": record.get("signed_by"), "source": record.get("source"),
                  "directory": target.name}
    status["previous_version"] = previous[1].get("version") if previous else None
    status["revoked_keys"] = _revoked_for_status(data_dir)
    status["last_attempt"] = {"time": now, "result": result, "reason": reason or None,
                              "version": version, "source": source or None}
    if reason:
        status["state"] = "refused"
        status["error"] = reason
    directory = feed_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{STATUS_FILE}.tmp"
    temporary.write_text(json.dumps(status, indent=1, default=str))
    os.replace(temporary, directory / STATUS_FILE)
    _store_status(data_dir, status, result, reason)
    return status


def _revoked_for_status(data_dir: str | Path) -> dict[str, Any]:
    try:
        return revocations(data_dir)
    except FeedError as exc:
        return {"error": str(exc)}


def status(data_dir: str | Path) -> dict[str, Any]:
    """The recorded status, with what is installed now (authoritative)."""
    recorded = read_status(data_dir)
    installed = _installed(data_dir)
    recorded["revoked_keys"] = _revoked_for_status(data_dir)
    recorded["installed"] = ({"version": installed[1].get("version"),
                              "feed": installed[1].get("feed"),
                              "directory": installed[0].name,
                              "files": current_rule_files(data_dir)}
                             if installed else None)
    return recorded


def _store_status(data_dir: str | Path, status: dict, result: str, reason: str) -> None:
    """Mirror the status into the store's `feed.status` setting (the web UI
    reads it), with an audit row. Best effort: status.json is the record."""
    from ips.store import connect

    try:
        conn = connect(Path(data_dir) / "reefguard.db")
    except Exception as exc:  # noqa: BLE001 - a busy or broken store must not fail an install
        log.warning("feed status not written to the store (%s)", exc)
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)"
                         " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                         (STATUS_SETTING, json.dumps(status, default=str)))
            conn.execute("INSERT INTO audit (ts, actor, action, target, reason, detail)"
                         " VALUES (?,?,?,?,?,?)",
                         (time.time(), "feed", f"feed.{result.replace(' ', '_')}",
                          status.get("feed"), reason or None,
                          json.dumps({"version": status.get("last_attempt", {}).get("version"),
                                      "installed": status.get("version")})))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except Exception as exc:  # noqa: BLE001
        log.warning("feed status not written to the store (%s)", exc)
    finally:
        conn.close()


# ----------------------------------------------------------------------
# fetching

def read_bundle(source: str, limits: Limits = Limits()) -> bytes:
    """The bundle's bytes from a file or an http(s) URL, size-capped."""
    if source.lower().startswith(("http://", "https://")):
        return fetch(source, limits)
    try:
        with open(source, "rb") as handle:
            data = handle.read(limits.bundle_bytes + 1)
    except OSError as exc:
        raise FeedError(f"cannot read {source} ({exc.strerror or exc})") from None
    if len(data) > limits.bundle_bytes:
        raise FeedError(f"bundle is over the {limits.bundle_bytes}-byte limit")
    return data


def fetch(url: str, limits: Limits = Limits(), timeout: float = 60.0) -> bytes:
    """Download a bundle over http(s), refusing more than `limits.bundle_bytes`."""
    import urllib.error
    import urllib.request

    if not url.lower().startswith(("https://", "http://")):
        raise FeedError(f"only http(s) URLs are fetched, not {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "reefguard-feed/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limits.bundle_bytes:
                raise FeedError(f"bundle at {url} is {length} bytes, over the "
                                f"{limits.bundle_bytes}-byte limit")
            data = response.read(limits.bundle_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FeedError(f"could not download {url} ({exc})") from None
    if len(data) > limits.bundle_bytes:
        raise FeedError(f"bundle at {url} is over the {limits.bundle_bytes}-byte limit")
    return data
