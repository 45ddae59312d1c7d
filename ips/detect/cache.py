"""Compiled rulesets cached on disk.

The key is a hash of everything that changes the result: the engine version,
the rule files' bytes in order (not their names, so a
moved copy of the same ruleset still hits), and the rule variables. The value is the
parsed rules plus the serialised Hyperscan databases, so a warm start skips
both the Python parse and the Hyperscan compile. A corrupt or stale cache
entry is ignored (and rebuilt), never trusted.

The entries are pickles, and unpickling runs code: an entry is read only if
it is a regular file (not a symlink) owned by us or root and writable by
nobody else, so a cache directory someone else can write to costs a
recompile, not the engine.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import tempfile

log = logging.getLogger("reefguard.detect.cache")

ENGINE_VERSION = "reefguard-detect-46"
MAX_CACHE_FILES = 8   # older entries are removed so the cache directory stays bounded


def ruleset_key(rule_texts: list[tuple[str, bytes]], variables_text: str) -> str:
    digest = hashlib.sha256()
    digest.update(ENGINE_VERSION.encode())
    digest.update(variables_text.encode())
    for path, data in rule_texts:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def load(cache_dir: str, key: str):
    path = os.path.join(cache_dir, f"detect-{key}.pickle")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if (not stat.S_ISREG(info.st_mode) or info.st_uid not in (os.geteuid(), 0)
                    or info.st_mode & 0o022):
                log.warning("rule cache %s ignored: not a private file of ours "
                            "(owner %d, mode %o)", path, info.st_uid, info.st_mode & 0o7777)
                return None
            payload = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("key") != key:
        return None
    return payload


def store(cache_dir: str, key: str, payload: dict) -> None:
    """Write atomically (temp file + rename) so a concurrent reader never sees half a file."""
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        payload = dict(payload, key=key)
        handle, temp_path = tempfile.mkstemp(dir=cache_dir, prefix=".detect-")
        with os.fdopen(handle, "wb") as out:
            pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp_path, os.path.join(cache_dir, f"detect-{key}.pickle"))
        entries = sorted((os.path.join(cache_dir, name) for name in os.listdir(cache_dir)
                          if name.startswith("detect-") and name.endswith(".pickle")),
                         key=os.path.getmtime)
        for old in entries[:-MAX_CACHE_FILES]:
            os.unlink(old)
    except OSError:
        # A read-only or full disk only costs the next start a recompile.
        return
