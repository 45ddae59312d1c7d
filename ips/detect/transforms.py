"""Sticky-buffer transforms (`dns.query; dotprefix; content:...`).

A rule's transformed buffer is named "base|transform|transform", so rules
using the same transform chain share one prefilter group and the engine
applies the chain once per buffer value.
"""
from __future__ import annotations

import hashlib
import re

_WHITESPACE = re.compile(rb"[ \t\r\n\v\f]+")
# A run of whitespace after its first byte: Suricata's compress_whitespace
# keeps that first byte as it is (a tab stays a tab), drops the rest.
_WHITESPACE_AFTER_FIRST = re.compile(rb"(?<=[ \t\r\n\v\f])[ \t\r\n\v\f]+")
_PERCENT = re.compile(rb"%([0-9a-fA-F]{2})")


def _url_decode(data: bytes) -> bytes:
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"+", b" "))


TRANSFORMS = {
    "dotprefix": lambda data: b"." + data,
    "to_lowercase": bytes.lower,
    "to_uppercase": bytes.upper,
    "strip_whitespace": lambda data: _WHITESPACE.sub(b"", data),
    "compress_whitespace": lambda data: _WHITESPACE_AFTER_FIRST.sub(b"", data),
    "url_decode": _url_decode,
    "to_md5": lambda data: hashlib.md5(data).digest(),
    "to_sha1": lambda data: hashlib.sha1(data).digest(),
    "to_sha256": lambda data: hashlib.sha256(data).digest(),
}


def split(name: str) -> tuple[str, tuple[str, ...]]:
    parts = name.split("|")
    return parts[0], tuple(parts[1:])


def apply(chain: tuple[str, ...], data: bytes) -> bytes:
    for transform in chain:
        data = TRANSFORMS[transform](data)
    return data
