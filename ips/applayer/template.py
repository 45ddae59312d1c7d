"""Copy-me template for a new application-layer parser.

To add protocol "foo":
1. copy this file to ips/applayer/foo.py and tests/applayer/test_template.py to
   tests/applayer/test_foo.py;
2. implement `feed`, keeping every buffer bounded (state the bound next to it);
3. add detection (by content first, port second) in `detect_tcp`/`detect_udp`
   and a branch in `_parser_for` in ips/applayer/__init__.py.

The example protocol: a line-based "KEY value\\n" protocol where each line is
one transaction. It shows the shape every parser follows:

* sans-IO: `feed(data, to_server, gap) -> list[Tx]`, no sockets, no clocks;
* `events`: anomaly names with the protocol prefix; the stage moves them onto
  the packet;
* bounded: at most MAX_LINE_BYTES are held per direction; a longer line is an
  event and is skipped up to its end;
* O(bytes): the line-end search never re-scans bytes already scanned;
* gaps: drop the partial message and resynchronise at the next line end;
* `finish()`: completes what is still open at flow end, so it gets logged.
"""
from __future__ import annotations

from ips.applayer import Tx

MAX_LINE_BYTES = 1024
"""Longest line held per direction."""


class _Direction:
    __slots__ = ("line", "discarding")

    def __init__(self) -> None:
        self.line = bytearray()
        self.discarding = False    # skipping the rest of an over-long line


class TemplateParser:
    """Example parser: one transaction per "KEY value" line."""

    __slots__ = ("events", "sides", "next_tx_id")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.sides = {True: _Direction(), False: _Direction()}
        self.next_tx_id = 0

    @property
    def buffered_bytes(self) -> int:
        return sum(len(side.line) for side in self.sides.values())

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        side = self.sides[to_server]
        if gap:
            # The partial line is unreliable; resync at the next newline.
            side.line.clear()
            side.discarding = True
        out: list[Tx] = []
        position = 0
        while position < len(data):
            newline = data.find(b"\n", position)
            if newline < 0:
                self._append(side, data[position:])
                break
            self._append(side, data[position:newline])
            position = newline + 1
            if side.discarding:
                side.discarding = False
                side.line.clear()
                continue
            out.append(self._transaction(bytes(side.line).rstrip(b"\r"), to_server))
            side.line.clear()
        return out

    def finish(self) -> list[Tx]:
        return []

    def _append(self, side: _Direction, data: bytes) -> None:
        if side.discarding:
            return
        if len(side.line) + len(data) > MAX_LINE_BYTES:
            self.events.append("template.line_too_long")
            side.line.clear()
            side.discarding = True
            return
        side.line += data

    def _transaction(self, line: bytes, to_server: bool) -> Tx:
        key, _, value = line.partition(b" ")
        tx = Tx(app_proto="template", tx_id=self.next_tx_id, to_server=to_server,
                buffers={"template.key": key, "template.value": value},
                record={"key": key.decode("utf-8", "replace"),
                        "value": value.decode("utf-8", "replace")},
                complete=True)
        self.next_tx_id += 1
        return tx
