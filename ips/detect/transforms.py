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


# Transforms with an argument: "name:hex(argument)" in a chain, so that a
# pattern's "|" cannot split the buffer name (see `split`).
PARAMETRIZED = ("xor", "pcrexform")


def with_argument(name: str, argument: bytes) -> str:
    return f"{name}:{argument.hex()}"


def _xor(key: bytes):
    size = len(key)

    def transform(data: bytes) -> bytes:
        repeated = (key * (len(data) // size + 1))[:len(data)]
        return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
            len(data), "big") if data else data
    return transform


def _pcrexform(pattern: bytes):
    """The first capture group of the first match; the buffer unchanged when
    the expression does not match (Suricata's pcrexform)."""
    from .parser import translate_pcre
    regex = re.compile(translate_pcre(pattern.decode("latin-1")).encode("latin-1"), re.S)

    def transform(data: bytes) -> bytes:
        match = regex.search(data)
        return match.group(1) or b"" if match is not None else data
    return transform


_BUILT: dict[str, object] = {}


def _parametrized(element: str):
    transform = _BUILT.get(element)
    if transform is None:
        name, _, argument = element.partition(":")
        raw = bytes.fromhex(argument)
        transform = _xor(raw) if name == "xor" else _pcrexform(raw)
        if len(_BUILT) < 4096:
            _BUILT[element] = transform
    return transform


def split(name: str) -> tuple[str, tuple[str, ...]]:
    parts = name.split("|")
    return parts[0], tuple(parts[1:])


def apply(chain: tuple[str, ...], data: bytes) -> bytes:
    for transform in chain:
        function = TRANSFORMS.get(transform)
        if function is None:
            function = _parametrized(transform)
        data = function(data)
    return data
