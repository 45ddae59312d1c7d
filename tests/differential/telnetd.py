"""busybox telnetd (what most IP cameras run) with a stand-in device login,
in a network namespace of its own, for the telnet differential test.

The telnetd. Debian's `busybox` package is built without telnetd, and
`busybox-static` (which has it) conflicts with it, so the static build is
never installed: `busybox()` downloads the package with `apt-get download`
into a cache directory (`~/.cache/reefguard/busybox-static/`, or
$REEFGUARD_BUSYBOX_CACHE) and unpacks it there with `dpkg-deb -x`; a copy
already unpacked there is used as it is (put one there by hand on a machine
without apt). `missing()` names what cannot be obtained.

The login. `FAKE_LOGIN` stands in for the device's login program, in two
flavours, because what "the login reads" depends on how it reads:

* bb: busybox `login` 1.35: the user name read with stdio (leading blanks
  and empty lines skipped, cut at the first byte <= ' '); the password by
  `bb_ask_noecho`: input flushed (tcflush), "Password: ", echo off, then one
  byte at a time up to CR, LF or EOF, compared as a C string; ^C aborts it.
* plain: a shell-script login: prompt, `stty -echo`, one read() of the
  line; no flush, SIGINT ignored.

Both keep the terminal in canonical mode (the kernel edits the line, as on
a device), allow three attempts, and log each read, as hex of exactly what
read() returned, to a file of their own in their telnetd's log directory
(`read_login`). The first login of each telnetd also saves `stty -a` there.

`running_telnetds(workdir)` creates the namespace `rgtelnet-<pid>` with only
its loopback up and starts, on 127.0.0.1 only, `workers` telnetds per
flavour, each on a port of its own (a telnetd serves one session at a time
in this test, so that each login's log belongs to one session). On the way
out, failure included, exactly the processes started here are stopped by
PID, with their children (the logins), then the namespace is deleted.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

# The namespace and process handling is the HTTP servers' (same package).
from tests.differential.servers import (HOST, SEARCH_PATH, ServerStartError, find_binary, child_processes,
                                        create_namespace, delete_namespace, stop_processes)

PACKAGE = "busybox-static"
CACHE_ENV = "REEFGUARD_BUSYBOX_CACHE"
DEFAULT_CACHE = Path("~/.cache/reefguard/busybox-static")
FLAVOURS = ("bb", "plain")
FIRST_PORT = 2301
WORKERS = 3
"""telnetds per flavour: sessions on one run one after the other."""
START_TIMEOUT = 10.0
LOGIN_EXIT_TIMEOUT = 3.0
"""How long a login may outlive its session (telnetd kills it on close)."""
LOGIN_EXIT_POLL = 0.01
STTY_FILE = "stty.txt"
TOOLS = {"ip": "iproute2", "stty": "coreutils"}
"""Binary this module needs -> its Debian package (the plain login runs stty)."""

FAKE_LOGIN = r'''#!{python} -I
"""Stand-in device login on a telnetd pty; see tests/differential/telnetd.py.
MODE=bb|plain, LOG_DIR: where each login logs its reads (one JSON object a line)."""
import json
import os
import signal
import subprocess
import sys
import termios
import time

MODE = os.environ["MODE"]
LOG_DIR = os.environ["LOG_DIR"]
LOG = os.path.join(LOG_DIR, "%d-%d.jsonl" % (os.getpid(), time.time_ns()))
PROMPT = b"camera login: "


def log(event, raw=b"", value=None, note=""):
    record = {"ev": event, "pid": os.getpid(), "raw": raw.hex(), "note": note,
              "value": None if value is None else value.hex()}
    with open(LOG, "a") as out:
        out.write(json.dumps(record) + "\n")


def write(data):
    os.write(1, data)


def read_byte():
    """One byte; None when ^C interrupted the read (bb password only)."""
    try:
        return os.read(0, 1)
    except InterruptedError:
        return None


def save_stty():
    try:
        fd = os.open(os.path.join(LOG_DIR, "stty.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(subprocess.run(["stty", "-a"], capture_output=True, text=True).stdout)


def bb_user():
    """busybox login's get_username: skip blanks and empty lines (five at
    most), then fgets the line and cut it at the first byte <= ' '."""
    raw = bytearray()
    empty_lines = 5
    while True:
        write(PROMPT)
        while True:
            byte = read_byte()
            if not byte:
                log("user", raw, None, "EOF")
                sys.exit(1)
            raw += byte
            if byte == b"\n":
                empty_lines -= 1
                if not empty_lines:
                    log("user", raw, None, "5 empty lines")
                    sys.exit(1)
                break
            if byte not in b" \t\r\x0b\x0c":
                line = bytearray(byte)
                while not line.endswith(b"\n"):
                    more = read_byte()
                    if not more:
                        log("user", raw, None, "EOF in fgets")
                        sys.exit(1)
                    raw += more
                    line += more
                name = bytearray()
                for char in line:
                    if char <= 0x20:
                        break
                    name.append(char)
                log("user", raw, bytes(name))
                return


def interrupt(_signum, _frame):
    raise InterruptedError


def bb_password():
    """bb_ask_noecho (1.35): flush, prompt, echo off, one byte at a time to
    CR, LF or EOF; SIGINT without SA_RESTART ends the read with nothing."""
    termios.tcflush(0, termios.TCIFLUSH)
    write(b"Password: ")
    old = termios.tcgetattr(0)
    quiet = termios.tcgetattr(0)
    quiet[3] &= ~(termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ECHONL)
    termios.tcsetattr(0, termios.TCSANOW, quiet)
    signal.signal(signal.SIGINT, interrupt)
    raw, value, note = bytearray(), None, ""
    while True:
        byte = read_byte()
        if byte is None:
            note = "read interrupted (^C)"
            break
        if byte == b"":
            note = "EOF"
            value = bytes(raw) if raw else None
            break
        raw += byte
        if byte in (b"\r", b"\n"):
            value = bytes(raw[:-1])
            break
        if len(raw) >= 0xfff:
            value, note = bytes(raw), "line limit"
            break
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    termios.tcsetattr(0, termios.TCSANOW, old)
    if value is not None:
        value = value.split(b"\0")[0]            # compared as a C string
    log("pass", raw, value, note)
    write(b"\n")


def plain_read(event):
    """One read() of the canonical line; the value without its LF."""
    data = os.read(0, 4096)
    value = (data[:-1] if data.endswith(b"\n") else data) if data else None
    log(event, data, value, "" if data else "EOF")
    return data


def plain_user():
    write(PROMPT)
    if not plain_read("user"):
        sys.exit(1)


def plain_password():
    write(b"Password: ")
    subprocess.run(["stty", "-echo"])
    plain_read("pass")
    subprocess.run(["stty", "echo"])
    write(b"\r\n")


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # a C login ignores it outside the password read
    save_stty()
    log("start")
    for _attempt in range(3):
        if MODE == "bb":
            bb_user()
            bb_password()
        else:
            plain_user()
            plain_password()
        time.sleep(0.1)
        write(b"Login incorrect\n" if MODE == "bb" else b"Login incorrect\r\n")
    log("exit")


main()
'''


class TelnetdUnavailable(RuntimeError):
    """busybox telnetd cannot be obtained here; the message says why."""


class TelnetdStartError(ServerStartError):
    """A telnetd did not come up; the message says which and why."""


# -- obtaining busybox telnetd --------------------------------------------------------

def cache_dir() -> Path:
    """Where busybox-static is downloaded and unpacked."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def busybox(cache: Path | None = None) -> Path:
    """The static busybox with telnetd: the copy unpacked in `cache` if there
    is one, else the package downloaded (or the .deb found there) and
    unpacked there. Never installs anything. Raises TelnetdUnavailable."""
    cache = Path(cache or cache_dir()).expanduser().resolve()
    binary = cache / "root" / "bin" / "busybox"
    if _has_telnetd(binary):
        return binary
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    deb = debs[-1] if debs else _download(cache)
    _unpack(deb, cache / "root")
    if not _has_telnetd(binary):
        raise TelnetdUnavailable(f"{deb} unpacked, but {binary} has no telnetd")
    return binary


def _has_telnetd(binary: Path) -> bool:
    if not binary.is_file():
        return False
    listed = subprocess.run([str(binary), "--list"], capture_output=True, text=True, timeout=10)
    return "telnetd" in listed.stdout.split()


def _download(cache: Path) -> Path:
    """`apt-get download` the package into `cache` (no root needed)."""
    if find_binary("apt-get") is None or find_binary("dpkg-deb") is None:
        raise TelnetdUnavailable(f"no apt-get/dpkg-deb to fetch {PACKAGE} with; unpack it by hand into "
                                 f"{cache}/root (bin/busybox)")
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([find_binary("apt-get"), "download", PACKAGE], cwd=cache, capture_output=True,
                          text=True, timeout=300)
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if done.returncode != 0 or not debs:
        errors = [line for line in done.stderr.splitlines() if line.startswith("E:")] or [done.stderr.strip()]
        raise TelnetdUnavailable(f"apt-get download {PACKAGE} failed ({'; '.join(errors)[-300:]}); "
                                 f"an 'apt-get update' may help")
    return debs[-1]


def _unpack(deb: Path, target: Path) -> None:
    """dpkg-deb -x into a scratch directory, then rename it into place: an
    interrupted unpack never looks like a cached copy."""
    scratch = Path(tempfile.mkdtemp(prefix="unpack-", dir=target.parent))
    try:
        done = subprocess.run([find_binary("dpkg-deb") or "dpkg-deb", "-x", str(deb), str(scratch)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise TelnetdUnavailable(f"dpkg-deb -x {deb} failed: {done.stderr.strip()[-300:]}")
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def version(binary: Path) -> str:
    """busybox's version line (it names the Debian package version)."""
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=10)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def missing(cache: Path | None = None) -> list[str]:
    """What the run needs and cannot get here, one line each (empty when
    all is there). Fetches busybox-static into the cache if need be."""
    problems = [f"{tool} (apt-get install {package})" for tool, package in TOOLS.items()
                if find_binary(tool) is None]
    try:
        busybox(cache)
    except (TelnetdUnavailable, OSError, subprocess.SubprocessError) as exc:
        problems.append(f"{PACKAGE}: {exc}")
    return problems


# -- the login's side ----------------------------------------------------------------

def write_login(workdir: Path) -> Path:
    """The fake login, run by this Python (standard library only)."""
    path = workdir / "fake_login.py"
    path.write_text(FAKE_LOGIN.replace("{python}", sys.executable, 1))
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class LoginReads:
    """What one login process read, in order (None: the read gave nothing,
    e.g. EOF or ^C)."""
    pid: int
    users: tuple[bytes | None, ...] = ()
    passwords: tuple[bytes | None, ...] = ()
    notes: tuple[str, ...] = ()


def read_login(path: Path) -> LoginReads:
    """Parse one login's log (FAKE_LOGIN's records)."""
    pid, users, passwords, notes = int(path.name.split("-")[0]), [], [], []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        value = None if record.get("value") is None else bytes.fromhex(record["value"])
        if record["ev"] == "user":
            users.append(value)
        elif record["ev"] == "pass":
            passwords.append(value)
        if record.get("note"):
            notes.append(f"{record['ev']}: {record['note']}")
    return LoginReads(pid, tuple(users), tuple(passwords), tuple(notes))


# -- the running telnetds ------------------------------------------------------------

@dataclass
class Telnetd:
    flavour: str
    port: int
    log_dir: Path
    process: subprocess.Popen | None = None
    seen_logs: set[str] = field(default_factory=set)
    """Login logs already handed out by `new_logins`."""

    def new_logins(self) -> list[LoginReads]:
        """The reads of each login started since the last call: the
        session's, once telnetd has no live child left (its logs are
        complete then, and a late-starting login is not taken for the next
        session's)."""
        deadline = time.monotonic() + LOGIN_EXIT_TIMEOUT
        while (lingering := bool(child_processes(self.process.pid))) and time.monotonic() < deadline:
            time.sleep(LOGIN_EXIT_POLL)
        fresh = sorted(path for path in self.log_dir.glob("*.jsonl") if path.name not in self.seen_logs)
        self.seen_logs.update(path.name for path in fresh)
        logins = [read_login(path) for path in fresh]
        if lingering:           # its log may miss reads still to come
            logins = [replace(login, notes=(*login.notes, "login still running")) for login in logins]
        return logins


@dataclass
class RunningTelnetds:
    namespace: str
    version: str
    servers: list[Telnetd]

    def exited(self) -> list[str]:
        """The telnetds no longer running."""
        return [f"{server.flavour} telnetd on port {server.port}" for server in self.servers
                if server.process is None or server.process.poll() is not None]

    def stty(self) -> list[str]:
        """Each distinct `stty -a` the logins saw on their terminal."""
        seen = {(server.log_dir / STTY_FILE).read_text() for server in self.servers
                if (server.log_dir / STTY_FILE).exists()}
        return sorted(seen)


@contextlib.contextmanager
def running_telnetds(workdir: Path | str, workers: int = WORKERS,
                     cache: Path | None = None) -> Iterator[RunningTelnetds]:
    """`workers` telnetds per login flavour up in a namespace of their own.
    Raises TelnetdStartError (after cleaning up) if one does not come up."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    binary = busybox(cache)
    login = write_login(workdir)
    issue = workdir / "issue"
    issue.write_text("")                 # no /etc/issue.net banner
    servers = _plan(workdir, workers)
    namespace = f"rgtelnet-{os.getpid()}"
    processes: dict[str, subprocess.Popen] = {}
    create_namespace(namespace)
    try:
        _ip("-n", namespace, "link", "set", "lo", "up")
        for server in servers:
            server.process = _start(namespace, binary, server, login, issue, workdir)
            processes[f"{server.flavour}-{server.port}"] = server.process
        failures = _wait_until_listening(namespace, servers, workdir)
        if failures:
            raise TelnetdStartError("telnetd did not start:\n" + "\n".join(failures))
        yield RunningTelnetds(namespace, version(binary), servers)
    finally:
        stop_processes(processes)
        delete_namespace(namespace)


def _plan(workdir: Path, workers: int) -> list[Telnetd]:
    """One Telnetd per flavour and worker, each with a new, empty log directory."""
    logs = Path(tempfile.mkdtemp(prefix="logins-", dir=workdir))
    servers = []
    for number, flavour in enumerate(flavour for flavour in FLAVOURS for _ in range(workers)):
        log_dir = logs / f"{flavour}-{FIRST_PORT + number}"
        log_dir.mkdir()
        servers.append(Telnetd(flavour, FIRST_PORT + number, log_dir))
    return servers


def _ip(*args: str) -> None:
    subprocess.run([find_binary("ip") or "ip", *args], capture_output=True, text=True, check=True)


def _start(namespace: str, binary: Path, server: Telnetd, login: Path, issue: Path,
           workdir: Path) -> subprocess.Popen:
    """telnetd in the foreground inside the namespace (`ip netns exec` execs
    it in place: the PID is telnetd's). The login gets its flavour and log
    directory through telnetd's environment, which it inherits."""
    env = {"PATH": SEARCH_PATH, "LANG": "C", "MODE": server.flavour, "LOG_DIR": str(server.log_dir)}
    argv = [find_binary("ip") or "ip", "netns", "exec", namespace, str(binary), "telnetd", "-F",
            "-b", f"{HOST}:{server.port}", "-f", str(issue), "-l", str(login)]
    with open(workdir / f"telnetd-{server.port}.out", "wb") as output:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                env=env, cwd=workdir)


def _listening(pid: int, namespace: str, port: int) -> bool:
    """Process `pid` is in `namespace` and listens on HOST:port. Read from
    /proc, not by connecting: a probe connection would start a login."""
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat(f"/run/netns/{namespace}").st_ino:
            return False
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    wanted = f"0100007F:{port:04X}"          # 127.0.0.1, little-endian as /proc shows it
    return any(fields[1] == wanted and fields[3] == "0A"      # 0A: LISTEN
               for fields in (line.split() for line in table.splitlines()[1:]))


def _wait_until_listening(namespace: str, servers: list[Telnetd], workdir: Path) -> list[str]:
    """One line per telnetd that exited or never listened."""
    waiting = list(servers)
    deadline = time.monotonic() + START_TIMEOUT
    failures = []
    while waiting and time.monotonic() < deadline:
        for server in list(waiting):
            if server.process.poll() is not None:
                failures.append(_failure(server, f"exited with {server.process.returncode}", workdir))
                waiting.remove(server)
            elif _listening(server.process.pid, namespace, server.port):
                waiting.remove(server)
        if waiting:
            time.sleep(0.05)
    failures += [_failure(server, f"not listening after {START_TIMEOUT:.0f} s", workdir)
                 for server in waiting]
    return failures


def _failure(server: Telnetd, why: str, workdir: Path) -> str:
    output = workdir / f"telnetd-{server.port}.out"
    tail = output.read_text(errors="replace")[-400:].strip() if output.exists() else ""
    return f"  {server.flavour} telnetd on port {server.port}: {why}" + "".join(
        f"\n    {line}" for line in tail.splitlines())
