"""Four real web servers of the kind IoT devices ship, for the differential
test, in a network namespace of their own.

`running_servers(workdir)` creates the namespace `rgdiff-<pid>` with only
its loopback up, writes the marker CGI and the server configurations into
`workdir`, and starts inside the namespace, on 127.0.0.1 only:

* busybox httpd (cameras, routers), mini_httpd, lighttpd (both common in
  embedded firmware) running the CGI directly;
* nginx, the reference server, running it through fcgiwrap.

Every server runs the same script, which records what it was asked to run
(method, query, SCRIPT_NAME, PATH_INFO, ...; `read_runs`): those records,
not the responses, say which requests a server executed. nginx maps the CGI
as a real configuration would (SCRIPT_NAME and PATH_INFO split from its
normalised URI), so it runs only what names the script. The servers run as root
(the test needs root anyway): no privilege drop means no file in `workdir`
has to be readable by another user, whatever the permissions of its parents.

On the way out, failure included, exactly the processes started here are
stopped, by PID (fcgiwrap's preforked workers by their parent's PID), then
the namespace is deleted. Nothing listens outside the namespace.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

HOST = "127.0.0.1"
PORTS = {"busybox": 8081, "mini_httpd": 8082, "lighttpd": 8083, "nginx": 8084}
"""Server name -> its port on the namespace's loopback."""

PACKAGES = {"iproute2": "ip", "busybox": "busybox", "mini-httpd": "mini_httpd", "lighttpd": "lighttpd",
            "nginx-light": "nginx", "fcgiwrap": "fcgiwrap"}
"""Debian package -> the binary this module runs from it (any nginx flavour
will do; nginx-light is the smallest)."""

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
"""Servers live in sbin, which a non-root PATH often lacks."""

START_TIMEOUT = 10.0
STOP_TIMEOUT = 3.0
CLONE_NEWNET = 0x40000000

CGI_SCRIPT = r"""#!/bin/sh
# The marker CGI: one record per run, appended to a file named after this
# process (so concurrent runs never interleave, and a reused PID only adds a
# record). Fields are separated by \037 and a record ends with \036.
printf '%s\037%s\037%s\037%s\037%s\037%s\037%s\036' "$SERVER_PORT" "$REQUEST_METHOD" "$QUERY_STRING" \
    "$REQUEST_URI" "$SCRIPT_NAME" "$PATH_INFO" "$CONTENT_LENGTH" >> "{runs}/$$"
printf 'Content-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n'
"""
RUN_FIELDS = ("port", "method", "query", "request_uri", "script_name", "path_info", "content_length")
"""The fields of one CGI record, in order."""

LIGHTTPD_CONF = """\
server.document-root = "{www}"
server.bind = "{host}"
server.port = {port}
server.modules = ("mod_cgi")
server.errorlog = "{logs}/lighttpd.err"
cgi.assign = (".cgi" => "")
server.max-keep-alive-requests = 1000
server.max-keep-alive-idle = 5
mimetype.assign = (".html" => "text/html")
"""
# lighttpd defaults otherwise, as Debian ships it: HTTP/2 is on (h2c too).

NGINX_CONF = """\
daemon off;
master_process off;
pid {run}/nginx.pid;
error_log {logs}/nginx.err;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {run}/nginx-body;
  fastcgi_temp_path {run}/nginx-fastcgi;
  proxy_temp_path {run}/nginx-proxy;
  uwsgi_temp_path {run}/nginx-uwsgi;
  scgi_temp_path {run}/nginx-scgi;
  server {{
    listen {host}:{port};
    root {www};
    # A CGI the way a real configuration maps it: SCRIPT_NAME and PATH_INFO
    # split from nginx's normalised $uri, so the log shows what nginx ran
    # ("/cgi-bin/m.cgi/.." is "/cgi-bin/", which runs no script).
    location ~ ^/cgi-bin/[^/]+\\.cgi(/|$) {{
      fastcgi_split_path_info ^(/cgi-bin/[^/]+\\.cgi)(/.*)$;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_pass unix:{socket};
    }}
  }}
}}
"""
# master_process off: one process to stop, and it never changes user.


class ServerStartError(RuntimeError):
    """One or more servers did not come up; the message says which and why."""


class RunningServers(dict):
    """Server name -> port, plus the namespace to reach them in and the
    directory the CGI writes its records to (`read_runs`)."""

    def __init__(self, ports: dict[str, int], namespace: str, runs_dir: Path,
                 processes: dict[str, subprocess.Popen]) -> None:
        super().__init__(ports)
        self.namespace = namespace
        self.runs_dir = runs_dir
        self._processes = processes

    def exited(self) -> list[str]:
        """The processes (servers, fcgiwrap) that are no longer running."""
        return [name for name, process in self._processes.items() if process.poll() is not None]


def read_runs(runs_dir: Path) -> list[dict[str, bytes]]:
    """Every CGI run recorded so far: field name (RUN_FIELDS) -> value."""
    records = []
    for path in sorted(runs_dir.iterdir()):
        for record in path.read_bytes().split(b"\x1e"):
            if record:
                records.append(dict(zip(RUN_FIELDS, record.split(b"\x1f"))))
    return records


# -- what is installed -------------------------------------------------------------

def missing_binaries() -> list[str]:
    """The Debian packages to install before the servers can run (empty
    when all are there)."""
    return [package for package, binary in PACKAGES.items() if find_binary(binary) is None]


def find_binary(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def server_versions() -> dict[str, str]:
    """Server name -> its version line, for the report."""
    probes = {"busybox": ["busybox"], "mini_httpd": ["mini_httpd", "-V"], "lighttpd": ["lighttpd", "-v"],
              "nginx": ["nginx", "-v"]}
    versions = {}
    for name, argv in probes.items():
        binary = find_binary(argv[0])
        if binary is None:
            versions[name] = "missing"
            continue
        done = subprocess.run([binary, *argv[1:]], capture_output=True, text=True, timeout=10)
        lines = (done.stdout + done.stderr).strip().splitlines()
        versions[name] = lines[0].strip() if lines else "unknown"
    versions["nginx"] += " + fcgiwrap"
    return versions


# -- the namespace -----------------------------------------------------------------

def enter_namespace(namespace: str) -> None:
    """Move the calling thread into network namespace `namespace`.

    setns(2) with CLONE_NEWNET changes the calling thread only: a worker
    thread that calls this opens its sockets in the namespace while the rest
    of the process stays where it was. (os.setns exists from Python 3.12.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{namespace}", "rb") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {namespace}: {os.strerror(error)}")


def in_namespace(namespace: str, function: Callable, *args):
    """function(*args), called in a short-lived thread inside `namespace`."""
    outcome: dict = {}

    def call() -> None:
        try:
            enter_namespace(namespace)
            outcome["value"] = function(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=call, name=f"in-{namespace}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([find_binary("ip") or "ip", *args], capture_output=True, text=True, check=check)


def create_namespace(namespace: str) -> None:
    """A new namespace (never one that exists: it is not ours)."""
    done = _ip("netns", "add", namespace, check=False)
    if done.returncode != 0:
        raise ServerStartError(f"cannot create network namespace {namespace}: {done.stderr.strip()}")


def delete_namespace(namespace: str) -> None:
    """Kill whatever still runs in the namespace (only ours can: it is
    private and named after this process), then delete it."""
    survivors = _ip("netns", "pids", namespace, check=False).stdout.split()
    if survivors:
        warnings.warn(f"processes left in {namespace} after stopping the servers: {survivors}", stacklevel=2)
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "delete", namespace, check=False)


# -- the site: CGI and configurations ------------------------------------------------

def _write_site(workdir: Path) -> dict[str, Path]:
    """The document root with the marker CGI, the log and run directories,
    and the lighttpd and nginx configurations, all inside `workdir`. The CGI
    records go to a new directory each time: a reused workdir never mixes
    in an earlier run's."""
    paths = {name: workdir / name for name in ("www", "logs", "run")}
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    paths["runs"] = Path(tempfile.mkdtemp(prefix="runs-", dir=workdir))
    (paths["www"] / "cgi-bin").mkdir(exist_ok=True)
    (paths["www"] / "index.html").write_text("ok\n")
    script = paths["www"] / "cgi-bin" / "m.cgi"
    script.write_text(CGI_SCRIPT.replace("{runs}", str(paths["runs"])))
    script.chmod(0o755)
    paths["socket"] = paths["run"] / "fcgiwrap.sock"
    paths["socket"].unlink(missing_ok=True)
    paths["lighttpd.conf"] = workdir / "lighttpd.conf"
    paths["lighttpd.conf"].write_text(LIGHTTPD_CONF.format(
        www=paths["www"], host=HOST, port=PORTS["lighttpd"], logs=paths["logs"]))
    paths["nginx.conf"] = workdir / "nginx.conf"
    paths["nginx.conf"].write_text(NGINX_CONF.format(
        run=paths["run"], logs=paths["logs"], host=HOST, port=PORTS["nginx"], www=paths["www"],
        socket=paths["socket"]))
    return paths


def _commands(paths: dict[str, Path]) -> dict[str, list[str]]:
    """Process name -> argv, in start order (fcgiwrap before nginx)."""
    www = str(paths["www"])
    return {
        "busybox": [find_binary("busybox"), "httpd", "-f", "-p", f"{HOST}:{PORTS['busybox']}", "-h", www],
        "mini_httpd": [find_binary("mini_httpd"), "-D", "-h", HOST, "-p", str(PORTS["mini_httpd"]), "-d", www,
                       "-c", "cgi-bin/*", "-u", "root", "-l", str(paths["logs"] / "mini_httpd.log")],
        "lighttpd": [find_binary("lighttpd"), "-D", "-f", str(paths["lighttpd.conf"])],
        "fcgiwrap": [find_binary("fcgiwrap"), "-c", "4", "-s", f"unix:{paths['socket']}"],
        "nginx": [find_binary("nginx"), "-e", str(paths["logs"] / "nginx.err"), "-c", str(paths["nginx.conf"])],
    }


# -- starting and stopping -----------------------------------------------------------

@contextlib.contextmanager
def running_servers(workdir: Path | str) -> Iterator[RunningServers]:
    """The four servers up in a namespace of their own: yields name -> port
    (a `RunningServers`, which also names the namespace and the directory
    of the CGI records). Raises ServerStartError, naming each server that did not
    come up and why, after cleaning up."""
    workdir = Path(workdir).resolve()
    paths = _write_site(workdir)
    namespace = f"rgdiff-{os.getpid()}"
    processes: dict[str, subprocess.Popen] = {}
    create_namespace(namespace)
    try:
        _ip("-n", namespace, "link", "set", "lo", "up")
        for name, argv in _commands(paths).items():
            processes[name] = _start(namespace, name, argv, paths["logs"])
        failures = _wait_until_ready(namespace, processes, paths)
        if failures:
            raise ServerStartError("servers did not start:\n" + "\n".join(failures))
        yield RunningServers(PORTS, namespace, paths["runs"], processes)
    finally:
        stop_processes(processes)
        delete_namespace(namespace)


def _start(namespace: str, name: str, argv: list[str], logs: Path) -> subprocess.Popen:
    """Start argv inside the namespace. `ip netns exec` execs the server in
    place, so the Popen's PID is the server's own."""
    with open(logs / f"{name}.out", "wb") as output:
        return subprocess.Popen([find_binary("ip") or "ip", "netns", "exec", namespace, *argv],
                                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                cwd=logs)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _unix_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


def _wait_until_ready(namespace: str, processes: dict[str, subprocess.Popen],
                      paths: dict[str, Path]) -> list[str]:
    """Wait until every server accepts connections (fcgiwrap: its socket);
    returns one line per server that exited or never did."""
    def ready(name: str) -> bool:
        if name == "fcgiwrap":
            return _unix_accepts(paths["socket"])
        return in_namespace(namespace, _accepts, PORTS[name])

    waiting = set(processes)
    deadline = time.monotonic() + START_TIMEOUT
    failures = []
    while waiting and time.monotonic() < deadline:
        for name in sorted(waiting):
            if processes[name].poll() is not None:
                failures.append(_failure(name, f"exited with {processes[name].returncode}", paths))
                waiting.discard(name)
            elif ready(name):
                waiting.discard(name)
        if waiting:
            time.sleep(0.05)
    failures += [_failure(name, f"not accepting after {START_TIMEOUT:.0f} s", paths)
                 for name in sorted(waiting)]
    return failures


def _failure(name: str, why: str, paths: dict[str, Path]) -> str:
    """A failed server's line, with the end of what it wrote."""
    tails = []
    for log in (paths["logs"] / f"{name}.out", paths["logs"] / f"{name}.err"):
        if log.exists() and log.stat().st_size:
            tails.append(log.read_text(errors="replace")[-400:].strip())
    return f"  {name}: {why}" + "".join(f"\n    {line}" for tail in tails for line in tail.splitlines())


def stop_processes(processes: dict[str, subprocess.Popen]) -> None:
    """Stop the started processes by PID, then their children (fcgiwrap's
    workers, a CGI still running) by their parent's PID. The parent goes
    first: fcgiwrap respawns a worker that dies while it lives."""
    children = {pid: start for process in processes.values() if process.poll() is None
                for pid, start in child_processes(process.pid)}
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    for pid, start in children.items():
        _signal_if_same(pid, start, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and any(_start_time(pid) == start for pid, start in children.items()):
        time.sleep(0.05)
    for pid, start in children.items():
        _signal_if_same(pid, start, signal.SIGKILL)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; the command name, which may
    hold spaces and parentheses, is cut off."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rpartition(")")[2].split()


def _start_time(pid: int) -> str | None:
    """The process's start time (with the PID, its identity), None once it
    is gone or a zombie."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return None
    return fields[19]


def child_processes(parent: int) -> list[tuple[int, str]]:
    """(PID, start time) of each live child of `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[0] != "Z" and int(fields[1]) == parent:
            found.append((int(entry.name), fields[19]))
    return found


def _signal_if_same(pid: int, start: str, sig: signal.Signals) -> None:
    """Signal `pid` only if it is still the process seen before (same start
    time), never a process that reused the number."""
    if _start_time(pid) == start:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def interrupt_on_sigterm() -> None:
    """Make kill (SIGTERM) unwind like Ctrl-C, so the context managers stop
    the processes they started and delete their namespace."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(_signum: int, _frame) -> None:
    raise KeyboardInterrupt
