"""MAC address → vendor, from the IEEE registry shipped by Debian's `ieee-data`.

The registry has three block sizes: MA-L (24-bit prefix, `oui.csv`), MA-M
(28-bit, `mam.csv`) and MA-S / IAB (36-bit, `oui36.csv`, `iab.csv`). A longer
prefix is more specific, so lookup tries 36, then 28, then 24 bits. The files
are read once, on the first lookup (about 46,000 rows, ~10 MB of dicts), so a
process that never asks for a vendor never pays for them.

Addresses with the locally administered bit set are not in the registry:
phones and some IoT stacks randomise their MAC per network for privacy, and
virtual machines pick local addresses. They are reported as such rather than
as "unknown", because "randomised" is itself a useful hint to a home user.
"""
from __future__ import annotations

import csv
import functools
import threading
from pathlib import Path

DEFAULT_DIRECTORY = Path("/usr/share/ieee-data")

# (file name, prefix length in hex digits); longest first.
REGISTRY_FILES = (("oui36.csv", 9), ("iab.csv", 9), ("mam.csv", 7), ("oui.csv", 6))

LOCALLY_ADMINISTERED = "locally administered (randomised or virtual)"
MULTICAST = "multicast"
BROADCAST = "broadcast"


@functools.lru_cache(maxsize=8192)  # bounded; every event carries MACs
def normalise_mac(mac: str | None) -> str | None:
    """'AA-BB-CC-DD-EE-FF', 'aabb.ccdd.eeff' → 'aa:bb:cc:dd:ee:ff'; None if not a MAC."""
    if not mac:
        return None
    digits = mac.lower().replace(":", "").replace("-", "").replace(".", "")
    if len(digits) != 12 or digits.strip("0123456789abcdef"):
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def is_group_mac(mac: str) -> bool:
    """Multicast or broadcast: the I/G bit (lowest bit of the first octet)."""
    try:
        return bool(int(mac[:2], 16) & 1)
    except ValueError:
        return False


def is_locally_administered(mac: str) -> bool:
    """The U/L bit (second-lowest bit of the first octet)."""
    try:
        return bool(int(mac[:2], 16) & 2)
    except ValueError:
        return False


class OuiRegistry:
    """Lazy prefix → organisation map built from the IEEE CSV files."""

    __slots__ = ("directory", "_tables", "_lock")

    def __init__(self, directory: str | Path = DEFAULT_DIRECTORY) -> None:
        self.directory = Path(directory)
        self._tables: list[tuple[int, dict[str, str]]] | None = None
        self._lock = threading.Lock()

    def _load(self) -> list[tuple[int, dict[str, str]]]:
        with self._lock:
            if self._tables is not None:
                return self._tables
            by_length: dict[int, dict[str, str]] = {}
            for name, length in REGISTRY_FILES:
                path = self.directory / name
                try:
                    handle = path.open(newline="", encoding="utf-8", errors="replace")
                except OSError:
                    continue  # a missing file narrows lookups, it does not break them
                with handle:
                    table = by_length.setdefault(length, {})
                    for row in csv.reader(handle):
                        if len(row) < 3 or len(row[1]) != length:
                            continue  # header or damaged row
                        organisation = row[2].strip()
                        # MA-M/MA-S blocks carved out of an MA-L say "IEEE
                        # Registration Authority" at 24 bits; the longer
                        # prefix holds the real owner.
                        if organisation and organisation.lower() != "private":
                            table[row[1].upper()] = organisation
            self._tables = sorted(by_length.items(), reverse=True)
            return self._tables

    def lookup(self, mac: str | None) -> str | None:
        """Vendor of `mac`, a marker for group/local addresses, or None."""
        normal = normalise_mac(mac)
        if normal is None:
            return None
        if normal == "ff:ff:ff:ff:ff:ff":
            return BROADCAST
        if is_group_mac(normal):
            return MULTICAST
        if is_locally_administered(normal):
            return LOCALLY_ADMINISTERED
        hexdigits = normal.replace(":", "").upper()
        for length, table in self._load():
            vendor = table.get(hexdigits[:length])
            if vendor is not None and vendor != "IEEE Registration Authority":
                return vendor
        return None

    def __len__(self) -> int:
        return sum(len(table) for _, table in self._load())


_default = OuiRegistry()


def vendor(mac: str | None) -> str | None:
    """Vendor lookup in the system registry (shared, loaded on first use)."""
    return _default.lookup(mac)
